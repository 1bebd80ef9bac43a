"""egp_core.evaluate.datasets: each format, the limits, and every bad file with its plain message."""

from __future__ import annotations

import io
import json

import pytest

from egp_core.evaluate import datasets as ds
from egp_core.evaluate.datasets import DatasetError, read_file, read_pasted


def refused(name: str, data: bytes) -> str:
    with pytest.raises(DatasetError) as info:
        read_file(name, data)
    message = info.value.message
    assert "Traceback" not in message and message.endswith(".")
    return message


def test_csv_with_quotes_commas_and_newlines():
    data = b'question,expected\n"Capital of France, please?",Paris\n"Two\nlines",2\n'
    d = read_file("q.csv", data)
    assert d.columns == ["question", "expected"]
    assert d.rows == [["Capital of France, please?", "Paris"], ["Two\nlines", "2"]]
    assert d.row(1) == {"question": "Two\nlines", "expected": "2"}
    assert len(d) == 2 and d.source_format == "csv"


def test_cells_stay_text():
    d = read_file("q.csv", b"id,code,empty\n007,NA,\n1.50,null,x\n")
    assert d.rows == [["007", "NA", ""], ["1.50", "null", "x"]]


def test_tsv_jsonl_and_json_array():
    assert read_file("q.tsv", b"a\tb\n1\t2\n").rows == [["1", "2"]]
    jl = b'{"question": "q1", "expected": "a1"}\n\n{"question": "q2", "extra": {"k": [1]}}\n'
    d = read_file("q.jsonl", jl)
    assert d.columns == ["question", "expected", "extra"]
    assert d.rows == [["q1", "a1", ""], ["q2", "", '{"k": [1]}']]
    arr = read_file("q.json", json.dumps([{"a": 1, "b": True}, {"a": 2.5}]).encode())
    assert arr.rows == [["1", "true"], ["2.5", ""]]


def test_xlsx(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.append(["question", "expected", "n"])
    sheet.append(["What is 2+2?", "4", 4])
    sheet.append(["Pi?", "3.14", 3.14])
    buf = io.BytesIO()
    wb.save(buf)
    d = read_file("book.xlsx", buf.getvalue())
    assert d.columns == ["question", "expected", "n"]
    assert d.rows == [["What is 2+2?", "4", "4"], ["Pi?", "3.14", "3.14"]]


def test_utf8_bom_and_utf16_are_read():
    assert read_file("q.csv", "\ufeffquestion\nÉté\n".encode()).columns == ["question"]
    assert read_file("q.csv", "question\nÉté\n".encode("utf-16")).rows == [["Été"]]


def test_pasted_table_from_a_spreadsheet_or_as_csv():
    assert read_pasted("question\texpected\nq1\ta1\n").rows == [["q1", "a1"]]
    assert read_pasted("question,expected\r\nq1,a1").rows == [["q1", "a1"]]
    with pytest.raises(DatasetError, match="Nothing was pasted"):
        read_pasted("  \n")


def test_content_hash_names_the_content_not_the_file():
    a = read_file("a.csv", b"q,e\n1,2\n")
    b = read_file("b.tsv", b"q\te\n1\t2\n")
    c = read_file("a.csv", b"q,e\n1,3\n")
    assert a.content_hash == b.content_hash != c.content_hash
    assert len(a.content_hash) == 16


# ----- bad input: one plain message each --------------------------------------------------------


def test_empty_file():
    assert "empty" in refused("q.csv", b"")
    assert "empty" in refused("q.csv", b"\n\n  \n")
    assert "no rows" in refused("q.csv", b"question,expected\n")
    assert "no rows" in refused("q.jsonl", b"[]")


def test_wrong_encoding():
    message = refused("q.csv", "question\ncafé\n".encode("latin-1"))
    assert "not UTF-8" in message and "line 2" in message and "CSV UTF-8" in message


def test_duplicate_column_names():
    message = refused("q.csv", b"question,Question\n1,2\n")
    assert 'Columns 1 and 2 are both called "Question"' in message
    assert "appears twice" in refused("q.jsonl", b'{"a": 1, "a": 2}\n')


def test_missing_column_name():
    assert "Column 2 has no name" in refused("q.csv", b"question,,expected\n1,2,3\n")


def test_ragged_rows():
    message = refused("q.csv", b"a,b\n1,2\n1,2,3\n")
    assert "Line 3 has 3 values" in message


def test_too_many_rows_and_too_big():
    rows = "q\n" + "x\n" * (ds.MAX_ROWS + 1)
    assert "10,001 rows; the limit is 10,000" in refused("q.csv", rows.encode())
    assert "the limit is 20 MB" in refused("q.csv", b"q\n" + b"x" * (ds.MAX_BYTES + 1))


def test_unreadable_kinds():
    assert "cannot be read" in refused("q.pdf", b"%PDF")
    assert ".xls" in refused("old.xls", b"\xd0\xcf")
    assert "Excel file could not be read" in refused("q.xlsx", b"not a zip")
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # a zip, but not a workbook
        z.writestr("hello.txt", "hi")
    assert "Excel file could not be read" in refused("q.xlsx", buf.getvalue())
    assert "Line 2 is not valid JSON" in refused("q.jsonl", b'{"a": 1}\n{oops\n')
    assert "not a JSON object" in refused("q.jsonl", b"[1, 2]\n")


# ----- mapping -----------------------------------------------------------------------------------


def test_columns_map_to_variables_by_name():
    cols = ["Question", "Expected Answer", "user_name"]
    assert ds.map_columns(["question", "userName", "topic"], cols) == {
        "question": "Question", "userName": "user_name", "topic": None}
    assert ds.guess_expected_column(cols) == "Expected Answer"
    assert ds.guess_expected_column(["q", "a"]) is None
    assert ds.unmapped({"question": "Question", "topic": None}, ["question", "topic"]) == ["topic"]


def test_row_values_use_none_for_empty_cells():
    d = read_file("q.csv", b"q,ctx\nhello,\n")
    assert ds.row_values(d, 0, {"question": "q", "context": "ctx"}) == {"question": "hello", "context": None}

"""Datasets for evaluation: read a CSV, TSV, JSONL or Excel file (or a pasted table).

    data = read_file("questions.csv", raw_bytes)     # or read_pasted(text)
    data.columns, len(data), data.row(0), data.content_hash
    mapping = map_columns(["question"], data.columns)   # {"question": "Question"}

Every cell is text ("" when empty). Up to MAX_ROWS rows and MAX_BYTES bytes.
Anything we cannot use raises `DatasetError`, whose message says what is wrong
and what to do, in words for a person; nothing is kept from a refused file.
The content hash names a dataset's version: the same columns and cells give
the same hash, whatever the file was called.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 10_000
MAX_BYTES = 20 * 1024 * 1024
FORMATS = {"csv": "CSV", "tsv": "TSV", "jsonl": "JSON Lines", "xlsx": "Excel"}
EXPECTED_NAMES = ("expected", "expected_answer", "expected_output", "answer", "ideal", "target", "reference",
                  "label", "gold")


class DatasetError(ValueError):
    """A file or table we cannot use. `message` is one or two sentences for a person."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass
class Dataset:
    """A table of text: named columns and rows of cells (lists in column order)."""

    name: str
    columns: list[str]
    rows: list[list[str]]
    source_format: str = "csv"
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.content_hash = content_hash(self.columns, self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, index: int) -> dict[str, str]:
        """Row `index` as {column: cell}."""
        return dict(zip(self.columns, self.rows[index], strict=True))

    def column(self, name: str) -> list[str]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def preview(self, n: int = 20) -> list[dict[str, str]]:
        """The first `n` rows as dicts (for a table on the page)."""
        return [self.row(i) for i in range(min(n, len(self.rows)))]


def content_hash(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A short, stable name of the table's content (sha256 of its columns and cells)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(columns), ensure_ascii=False).encode())
    for row in rows:
        h.update(b"\n")
        h.update(json.dumps(list(row), ensure_ascii=False).encode())
    return h.hexdigest()[:16]


# ----- reading -------------------------------------------------------------------------------


def format_of(filename: str) -> str | None:
    """"csv", "tsv", "jsonl" or "xlsx" from the file name, None when not one we read."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {"csv": "csv", "txt": "csv", "tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "ndjson": "jsonl",
            "json": "jsonl", "xlsx": "xlsx"}.get(ext)


def read_file(filename: str, data: bytes) -> Dataset:
    """Read an uploaded file. Raises DatasetError with a plain message when it cannot be used."""
    fmt = format_of(filename)
    if fmt is None:
        if filename.lower().endswith(".xls"):
            raise DatasetError("Old Excel files (.xls) cannot be read. Save it as .xlsx or CSV and upload again.")
        raise DatasetError("This kind of file cannot be read. Upload a CSV, TSV, JSON Lines (.jsonl) or "
                           "Excel (.xlsx) file.")
    _check_size(len(data))
    if not data.strip():
        raise DatasetError("The file is empty. Upload a file with a row of column names and at least one row.")
    if fmt == "xlsx":
        header, rows = _read_xlsx(data)
    else:
        text = decode(data)
        if fmt == "jsonl":
            header, rows = _read_jsonl(text)
        else:
            header, rows = _read_delimited(text, "\t" if fmt == "tsv" else ",")
    return _dataset(filename, header, rows, fmt)


def read_pasted(text: str, name: str = "Pasted table") -> Dataset:
    """A table pasted from a spreadsheet (tab-separated) or typed as CSV; the first line names the columns."""
    _check_size(len(text.encode("utf-8", "replace")))
    if not text.strip():
        raise DatasetError("Nothing was pasted. Paste a table whose first line holds the column names.")
    first = text.strip("\r\n").split("\n", 1)[0]
    sep = "\t" if "\t" in first else ","
    header, rows = _read_delimited(text.strip("\r\n") + "\n", sep)
    return _dataset(name, header, rows, "tsv" if sep == "\t" else "csv")


def decode(data: bytes) -> str:
    """The bytes as text: UTF-8 (with or without a byte-order mark) or UTF-16 with one."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise DatasetError(
                f"The file is not UTF-8 text (the first unreadable character is on line {line}). "
                "In your spreadsheet, save it as \"CSV UTF-8\" and upload it again."
            ) from None
    raise DatasetError("The file's text encoding could not be read. Save it as \"CSV UTF-8\" and upload it again.")


def _check_size(n_bytes: int) -> None:
    if n_bytes > MAX_BYTES:
        raise DatasetError(f"The file is {n_bytes / 1024 / 1024:.1f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB. "
                           "Split it, or keep fewer rows.")


def _read_delimited(text: str, sep: str) -> tuple[list[Any], list[list[Any]]]:
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False,
                            skip_blank_lines=True, engine="c")
    except pd.errors.EmptyDataError:
        raise DatasetError("The file is empty. Upload a file with a row of column names and at least "
                           "one row.") from None
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            want, line, saw = match.groups()
            raise DatasetError(f"Line {line} has {saw} values, but the first line names {want} columns. "
                               "Check that line for an extra separator or an unclosed quote.") from None
        raise DatasetError("The table could not be read: " + str(exc).strip()[:200]) from None
    values = frame.to_numpy().tolist()
    if not values:
        raise DatasetError("The file is empty. Upload a file with a row of column names and at least one row.")
    return values[0], values[1:]


def _read_jsonl(text: str) -> tuple[list[Any], list[list[Any]]]:
    records: list[dict[str, Any]] = []
    stripped = text.strip()
    if stripped.startswith("["):  # a JSON array of objects is welcome too
        try:
            loaded = json.loads(stripped, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:
            raise DatasetError(f"The file is not valid JSON: {_json_reason(exc)}.") from None
        items = loaded if isinstance(loaded, list) else []
        for i, item in enumerate(items, 1):
            records.append(_object(item, f"Item {i}"))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except ValueError as exc:
                raise DatasetError(f"Line {n} is not valid JSON: {_json_reason(exc)}. Each line must be one "
                                   "JSON object, like {\"question\": \"...\", \"expected\": \"...\"}.") from None
            records.append(_object(item, f"Line {n}"))
    if not records:
        raise DatasetError("The file has no rows. Each line must be one JSON object.")
    header: list[str] = []
    for record in records:
        for key in record:
            if key not in header:
                header.append(key)
    return header, [[record.get(k) for k in header] for record in records]


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"the name \"{key}\" appears twice in one object; rename one of them")
        seen[key] = value
    return seen


def _json_reason(exc: ValueError) -> str:
    return str(exc) if isinstance(exc, _DuplicateKey) else str(exc).split(":")[0].lower()


def _object(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise DatasetError(f"{where} is not a JSON object. Each row must look like "
                           "{\"question\": \"...\", \"expected\": \"...\"}.")
    return item


def _read_xlsx(data: bytes) -> tuple[list[Any], list[list[Any]]]:
    import pandas as pd

    try:
        frame = pd.read_excel(io.BytesIO(data), header=None, dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # openpyxl and zipfile raise many kinds for a file that is not a workbook
        raise DatasetError("This Excel file could not be read. Open it in your spreadsheet, save it as .xlsx "
                           "again (or as CSV UTF-8), and upload it.") from exc
    values = frame.to_numpy().tolist()
    values = [r for r in values if any(_cell(v) for v in r)]
    if not values:
        raise DatasetError("The first sheet of this Excel file is empty. Put the column names in its first row.")
    return values[0], values[1:]


def _cell(value: Any) -> str:
    """A cell as text: "" for empty, JSON for nested values, no trailing ".0" on whole numbers."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dataset(name: str, header: list[Any], rows: list[list[Any]], fmt: str) -> Dataset:
    columns = [_cell(c).strip() for c in header]
    for i, col in enumerate(columns, 1):
        if not col:
            raise DatasetError(f"Column {i} has no name. Give every column a name in the first row, then "
                               "upload again.")
    seen: dict[str, int] = {}
    for i, col in enumerate(columns, 1):
        key = col.lower()
        if key in seen:
            raise DatasetError(f"Columns {seen[key]} and {i} are both called \"{col}\". Give each column its own "
                               "name in the first row, then upload again.")
        seen[key] = i
    if not rows:
        raise DatasetError("The file has column names but no rows. Add at least one row under them.")
    if len(rows) > MAX_ROWS:
        raise DatasetError(f"The file has {len(rows):,} rows; the limit is {MAX_ROWS:,}. Keep the first "
                           f"{MAX_ROWS:,}, or split it into several files.")
    cells = [[_cell(v) for v in row] for row in rows]
    return Dataset(name=name, columns=columns, rows=cells, source_format=fmt)


# ----- mapping columns to variables ------------------------------------------------------------


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


def map_columns(variables: Sequence[str], columns: Sequence[str]) -> dict[str, str | None]:
    """Each template variable's column, matched by name (case, spaces and _ ignored); None when none matches."""
    by_key: dict[str, str] = {}
    for col in columns:
        by_key.setdefault(_key(col), col)
    return {v: by_key.get(_key(v)) for v in variables}


def guess_expected_column(columns: Sequence[str], taken: Sequence[str] = ()) -> str | None:
    """The column that most likely holds the expected answer ("expected", "answer", ...), or None."""
    keys = {_key(c): c for c in columns if c not in taken}
    for name in EXPECTED_NAMES:
        if _key(name) in keys:
            return keys[_key(name)]
    return None


def unmapped(mapping: dict[str, str | None], required: Sequence[str]) -> list[str]:
    """The required variables that have no column."""
    return [v for v in required if not mapping.get(v)]


def row_values(dataset: Dataset, index: int, mapping: dict[str, str | None]) -> dict[str, str | None]:
    """The template's values for row `index`: the mapped cells; an empty cell is None (its default applies)."""
    row = dataset.rows[index]
    out: dict[str, str | None] = {}
    for var, col in mapping.items():
        if col is None:
            out[var] = None
            continue
        value = row[dataset.columns.index(col)]
        out[var] = value if value != "" else None
    return out


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as CSV text (for exports)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()

"""egp_core.capabilities (what a connection + API + model can do) and egp_core.json_answers."""

from __future__ import annotations

from egp_core.capabilities import capabilities_for
from egp_core.connections import Connection, connections_from
from egp_core.json_answers import check_answer, schema_from_fields, schema_problem


def conn(kind: str = "egp", declared: dict | None = None) -> Connection:
    return Connection(id="c", name="C", kind=kind, base_url="http://h", declared=declared)


def test_v5_and_openai_can_do_everything_older_apis_say_why_not():
    for kind, api in (("egp", "v5-chat"), ("local", "v5-chat"), ("openai", "chat")):
        caps = capabilities_for(conn(kind), api)
        assert caps.candidates and caps.seed and caps.logprobs and caps.json_mode and caps.json_schema and caps.chat
        assert caps.max_top_logprobs == 5 and caps.why_not("logprobs") is None
    old = capabilities_for(conn("egp"), "completions")
    assert not (old.seed or old.logprobs or old.json_mode or old.candidates or old.chat)
    assert old.why_not("logprobs").startswith("This workspace's completions API (v2) doesn't return token probabilities.")
    assert "v4" in capabilities_for(conn("egp"), "chat").why_not("seed")
    assert capabilities_for(conn("local"), "completions").why_not("seed").startswith("The local model's")
    assert not capabilities_for(conn("egp"), "v5-completions").chat


def test_declared_capabilities_narrow_a_connection():
    caps = capabilities_for(conn("openai", {"logprobs": False, "json_mode": False, "max_top_logprobs": 9}), "chat")
    assert not caps.logprobs and not caps.json_mode and not caps.json_schema and caps.seed
    assert caps.max_top_logprobs == 5
    assert "can't return token probabilities" in caps.why_not("logprobs")


def test_a_completion_only_model_has_no_chat_form():
    caps = capabilities_for(conn("egp"), "v5-chat", {"model_type": "completion"})
    assert not caps.chat and "only completes a prompt" in caps.why_not("chat")


def test_capabilities_are_declared_in_secrets():
    secrets = {"connections": {"ollama": {"kind": "openai", "base_url": "http://gpu:11434",
                                          "capabilities": {"logprobs": False, "candidates": False}}}}
    found = connections_from({}, secrets, None)
    assert found[0].declared == {"logprobs": False, "candidates": False}
    assert not capabilities_for(found[0], "chat").logprobs


def test_schema_from_fields():
    schema, problem = schema_from_fields("name: string\nage: integer\n\nhobbies: list\nalive")
    assert problem is None
    assert schema["properties"] == {"name": {"type": "string"}, "age": {"type": "integer"},
                                    "hobbies": {"type": "array", "items": {"type": "string"}},
                                    "alive": {"type": "string"}}
    assert schema["required"] == ["name", "age", "hobbies", "alive"]
    assert schema_from_fields("a: money")[1] == "Line 1: 'money' is not a type here; use string, number, " \
                                                "integer, boolean or list."
    assert schema_from_fields("a\na")[1] == "Line 2: the field 'a' is already there."
    assert schema_from_fields("   ")[1].startswith("Add at least one field")
    assert schema_from_fields("1: x: y")[1] == 'Line 1 should look like "name: string".'


def test_check_answer():
    schema, _ = schema_from_fields("name: string\nage: integer")
    ok = check_answer('{"age": 3, "name": "Kit"}', schema)
    assert ok.ok and ok.pretty == '{\n  "age": 3,\n  "name": "Kit"\n}'
    wrong = check_answer('{"name": "Kit", "age": "three"}', schema)
    assert not wrong.ok and wrong.message == ("This answer is JSON but does not match the schema: at age, "
                                              "'three' is not of type 'integer'.")
    cut = check_answer('{"name": "Ki', schema)
    assert not cut.ok and cut.message.startswith("This answer is not valid JSON: Unterminated string")
    assert "cut off by the max tokens limit" in cut.message
    assert check_answer("[1, 2]").ok
    assert schema_problem({"type": "nonsense"}).startswith("The schema is not valid:")
    assert schema_problem([1]).startswith("The schema must be a JSON object")

"""JSON mode answers: a schema from a few fields, a schema checked, an answer validated.

    schema, problem = schema_from_fields("name: string\\nage: integer")
    result = check_answer('{"name": "Ada", "age": 36}', schema)
    result.ok, result.pretty, result.message

Every problem is a sentence for a person (what is wrong, where).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

FIELD_TYPES = {"string": {"type": "string"}, "text": {"type": "string"}, "number": {"type": "number"},
               "integer": {"type": "integer"}, "int": {"type": "integer"}, "boolean": {"type": "boolean"},
               "bool": {"type": "boolean"}, "list": {"type": "array", "items": {"type": "string"}}}
_FIELD = re.compile(r"^\s*([A-Za-z_][\w\- ]*?)\s*(?::\s*([A-Za-z]+))?\s*$")


@dataclass(frozen=True)
class Checked:
    ok: bool
    pretty: str = ""
    message: str = ""
    value: Any = None


def schema_problem(schema: Any) -> str | None:
    """None when `schema` is a usable JSON schema, else a sentence."""
    import jsonschema

    if not isinstance(schema, dict):
        return 'The schema must be a JSON object, like {"type": "object", "properties": {...}}.'
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"The schema is not valid: {exc.message}."
    return None


def schema_from_fields(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """An object schema from lines "name: type" (type defaults to string). (schema, None) or
    (None, a sentence saying which line is wrong)."""
    properties: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _FIELD.match(line)
        if not match:
            return None, f"Line {number} should look like \"name: string\"."
        name, kind = match.group(1).strip(), (match.group(2) or "string").lower()
        if kind not in FIELD_TYPES:
            return None, (f"Line {number}: {kind!r} is not a type here; use string, number, integer, "
                          "boolean or list.")
        if name in properties:
            return None, f"Line {number}: the field {name!r} is already there."
        properties[name] = dict(FIELD_TYPES[kind])
    if not properties:
        return None, "Add at least one field, like \"name: string\"."
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}, None


def check_answer(text: str, schema: dict[str, Any] | None = None) -> Checked:
    """Is the answer JSON (and does it match `schema`)? With the pretty-printed value, or a sentence."""
    import jsonschema

    try:
        value = json.loads(text)
    except ValueError as exc:
        ended = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated")
        cut = " It may have been cut off by the max tokens limit." if ended else ""
        return Checked(False, message=f"This answer is not valid JSON: {exc.msg} (line {exc.lineno}, column "
                                      f"{exc.colno}).{cut}")
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    if schema:
        errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(value),
                        key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "the top level"
            more = f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
            return Checked(False, pretty=pretty, value=value,
                           message=f"This answer is JSON but does not match the schema: at {where}, "
                                   f"{first.message}.{more}")
    return Checked(True, pretty=pretty, value=value)

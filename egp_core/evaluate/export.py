"""A run's results as CSV or JSON, as a Python script that runs it again with the official SDK, and
one row as a chat conversation ("Open in chat").

No API key ever appears: the script reads it from $EGP_API_KEY (or
$OPENAI_API_KEY for an OpenAI-compatible server).
"""

from __future__ import annotations

import json
from typing import Any

from egp_core.snippets import py_str, py_value

from .datasets import Dataset, to_csv
from .records import Records, Run
from .runner import Contestant, RunConfig, filled

COLUMNS = ("row", "contestant", "model", "repeat", "status", "output", "error", "passed", "judge_score", "grades",
           "latency_s", "first_token_s", "prompt_tokens", "completion_tokens", "cost_usd", "review", "review_note")


def _rows(records: Records, run: Run) -> list[dict[str, Any]]:
    config = RunConfig.from_dict(run.config)
    out = []
    for r in records.all_results(run.id):
        c = config.contestants[r["contestant"]] if r["contestant"] < len(config.contestants) else None
        error = r["error"]
        if error:
            try:
                error = json.loads(error).get("message") or error
            except (ValueError, AttributeError):
                pass
        out.append({
            "row": r["row_index"] + 1, "contestant": c.label if c else r["contestant"], "model": c.model if c else "",
            "repeat": r["repeat_index"] + 1, "status": r["status"], "output": r["output"], "error": error or "",
            "passed": r["passed"], "judge_score": r["judge_score"], "grades": r["grades"] or [],
            "latency_s": r["latency"], "first_token_s": r["first_token"], "prompt_tokens": r["prompt_tokens"],
            "completion_tokens": r["completion_tokens"], "cost_usd": r["cost"], "review": r["review_score"],
            "review_note": r["review_note"] or "",
        })
    return out


def results_csv(records: Records, run: Run) -> str:
    rows = _rows(records, run)
    return to_csv(COLUMNS, [[json.dumps(r[c]) if c == "grades" else ("" if r[c] is None else r[c]) for c in COLUMNS]
                            for r in rows])


def results_json(records: Records, run: Run) -> str:
    config = RunConfig.from_dict(run.config)
    doc = {"format": "egp-playground-evaluation", "version": 1, "title": run.title, "status": run.status,
           "created_at": run.created_at.isoformat(), "config": config.to_dict(), "results": _rows(records, run)}
    for c in doc["config"]["contestants"]:
        c.pop("base_url", None)  # where it ran stays private to the team; the script asks for it
    return json.dumps(doc, ensure_ascii=False, indent=1)


def script(config: RunConfig, dataset: Dataset) -> str:
    """A Python script that runs the evaluation again with scale-egp (openai for OpenAI-compatible servers)."""
    contestants = []
    for c in config.contestants:
        params = {k: v for k, v in (c.parameters or {}).items() if k in ("temperature", "max_tokens", "stop_sequences")}
        contestants.append({"label": c.label, "kind": c.kind, "base_url": c.base_url, "model": c.model,
                            "template": c.template, "system_prompt": c.system_prompt, "parameters": params})
    lines = [
        '"""Runs the evaluation again: every row of dataset.csv to every contestant; writes results.csv.',
        "",
        "Export the dataset as dataset.csv next to this file. The key is read from $EGP_API_KEY",
        '($OPENAI_API_KEY for an OpenAI-compatible server). pip install scale-egp openai"""',
        "",
        "import csv",
        "import os",
        "import re",
        "",
        "from scale_egp.sdk.client import EGPClient",
        "from scale_egp.sdk.types.completions import ModelParameters",
        "",
        f"MAPPING = {py_value(config.mapping)}  # template variable -> dataset column",
        f"REPEATS = {config.repeats}",
        f"CONTESTANTS = {py_value(contestants)}",
        "",
        "",
        "def fill(template, values):",
        '    """{{name}} and {{name|default}}, as the playground fills them."""',
        "    def one(match):",
        "        value = values.get(match.group(1))",
        "        return value if value else (match.group(3) or '')",
        r"    return re.sub(r'(?<!\\)\{\{([A-Za-z0-9_]+)(\|([^}]*))?\}\}', one, template).replace('\\{{', '{{')",
        "",
        "",
        "def ask(contestant, prompt):",
        "    if contestant['kind'] == 'openai':",
        "        from openai import OpenAI",
        "",
        "        client = OpenAI(base_url=contestant['base_url'].rstrip('/') + '/v1',",
        "                        api_key=os.environ.get('OPENAI_API_KEY') or 'none')",
        "        messages = [{'role': 'user', 'content': prompt}]",
        "        if contestant['system_prompt']:",
        "            messages.insert(0, {'role': 'system', 'content': contestant['system_prompt']})",
        "        answer = client.chat.completions.create(model=contestant['model'], messages=messages,",
        "                                                **contestant['parameters'])",
        "        return answer.choices[0].message.content",
        "    client = EGPClient(api_key=os.environ.get('EGP_API_KEY') or 'none', endpoint_url=contestant['base_url'],",
        "                       account_id=os.environ.get('EGP_ACCOUNT_ID'))",
        "    if contestant['system_prompt']:",
        "        prompt = f\"System: {contestant['system_prompt']}\\n\\nUser: {prompt}\\n\\nAssistant:\"",
        "    completion = client.completions().create(model=contestant['model'], prompt=prompt,",
        "                                             account_id=client.account_id,",
        "                                             model_parameters=ModelParameters(**contestant['parameters']))",
        "    return completion.completion.text",
        "",
        "",
        "with open('dataset.csv', newline='', encoding='utf-8') as f:",
        "    rows = list(csv.DictReader(f))",
        "with open('results.csv', 'w', newline='', encoding='utf-8') as f:",
        "    out = csv.writer(f)",
        "    out.writerow(['row', 'contestant', 'model', 'repeat', 'output'])",
        "    for number, row in enumerate(rows, 1):",
        "        values = {var: row.get(col, '') for var, col in MAPPING.items() if col}",
        "        for contestant in CONTESTANTS:",
        "            prompt = fill(contestant['template'], values)",
        "            for repeat in range(1, REPEATS + 1):",
        "                answer = ask(contestant, prompt)",
        "                out.writerow([number, contestant['label'], contestant['model'], repeat, answer])",
        "                print(number, contestant['label'], repeat, answer[:60].replace('\\n', ' '))",
        "",
    ]
    header = f"# Evaluation of {py_str(dataset.name)}: {len(dataset)} rows x {len(config.contestants)} contestants\n"
    return header + "\n".join(lines)


def row_to_conversation(store: Any, owner: str, c: Contestant, dataset: Dataset, row: int,
                        mapping: dict[str, str | None], answer: str) -> str:
    """A new chat holding the row's filled prompt and the contestant's answer, to carry on by hand."""
    system, prompt = filled(c, dataset, row, mapping)
    settings: dict[str, Any] = {"model": c.model}
    if system:
        settings["system_prompt"] = system
    conv = store.create_conversation(owner, f"Row {row + 1} of {dataset.name}"[:200], settings=settings)
    store.add_message(conv, "user", prompt)
    store.add_message(conv, "assistant", answer, model=c.model, parameters=c.parameters)
    return conv

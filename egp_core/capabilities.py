"""What a connection + API + model supports: candidates, seed, token probabilities, JSON mode.

Known once per connection: detected from the API it speaks (the OpenAI-shaped
APIs take `n`, `seed`, `logprobs` and `response_format`; EGP's older v2/v4
completions take none of them), then narrowed by what the connection declares
(a `capabilities` table in its secrets.toml section, e.g. an Ollama server
without logprobs) and by the model's type (a completion-only model has no chat
form). Every "no" comes with a sentence a person can read, so the page can say
why a control is missing instead of showing one that would fail.

    caps = capabilities_for(connection, api, model_info)
    caps.seed, caps.logprobs, caps.why_not("logprobs")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

FEATURES = ("candidates", "seed", "logprobs", "json_mode", "json_schema", "system_prompt", "chat")
MAX_CANDIDATES = 4
MAX_TOP_LOGPROBS = 5

_WHAT = {
    "candidates": "ask for several answers at once",
    "seed": "take a seed (repeatable answers)",
    "logprobs": "return token probabilities",
    "json_mode": "enforce JSON answers",
    "json_schema": "enforce a JSON schema",
    "system_prompt": "take a system prompt",
    "chat": "take the conversation as messages",
}


@dataclass(frozen=True)
class Capabilities:
    """What one connection, speaking one API, can do with one model."""

    api: str
    chat: bool = True  # messages (else one transcript prompt)
    system_prompt: bool = True
    candidates: bool = False  # several answers in one request (`n`); the page can always send several requests
    seed: bool = False
    logprobs: bool = False
    max_top_logprobs: int = 0
    json_mode: bool = False
    json_schema: bool = False
    reasons: Mapping[str, str] = field(default_factory=dict)

    def why_not(self, feature: str) -> str | None:
        """A sentence for the person when `feature` is not available, else None."""
        if getattr(self, feature, False):
            return None
        return self.reasons.get(feature) or f"This connection can't {_WHAT.get(feature, feature)}."

    def to_dict(self) -> dict[str, Any]:
        return {"api": self.api, **{f: getattr(self, f) for f in FEATURES},
                "max_top_logprobs": self.max_top_logprobs}


def _place(kind: str) -> str:
    return {"local": "The local model", "openai": "This server"}.get(kind, "This workspace")


def detected(kind: str, api: str) -> Capabilities:
    """What the API itself offers."""
    place = _place(kind)
    if kind == "openai" or api.startswith("v5-"):
        chat = api != "v5-completions" and api != "completions"
        reasons = {}
        if not chat:
            reasons["chat"] = f"{place}'s completions API takes one prompt; the conversation goes as a transcript."
        return Capabilities(api=api, chat=chat, candidates=True, seed=True, logprobs=True,
                            max_top_logprobs=MAX_TOP_LOGPROBS, json_mode=True, json_schema=True, reasons=reasons)
    name = "chat completions API (v4)" if api == "chat" else "completions API (v2)"
    newer = " Pick the v5 API in Advanced, if the workspace has it." if kind != "local" else \
        " Pick the v5 API in Advanced."
    return Capabilities(api=api, chat=api == "chat", candidates=False, seed=False, logprobs=False,
                        json_mode=False, json_schema=False, reasons={
                            "candidates": f"{place}'s {name} returns one answer per request: candidates are "
                                          "sent as separate requests.",
                            "seed": f"{place}'s {name} doesn't take a seed.{newer}",
                            "logprobs": f"{place}'s {name} doesn't return token probabilities.{newer}",
                            "json_mode": f"{place}'s {name} can't enforce JSON answers.{newer}",
                            "json_schema": f"{place}'s {name} can't enforce a JSON schema.{newer}",
                            "chat": f"{place}'s {name} takes one prompt; the conversation goes as a transcript.",
                        })


def _declared(caps: Capabilities, declared: Mapping[str, Any], place: str) -> Capabilities:
    """Narrow (or widen) by what the connection says about itself."""
    changes: dict[str, Any] = {}
    reasons = dict(caps.reasons)
    for name in FEATURES:
        if name in declared:
            value = bool(declared[name])
            changes[name] = value
            if not value:
                reasons[name] = f"{place} is set up without this: it can't {_WHAT[name]} (see its settings)."
    if "max_top_logprobs" in declared:
        changes["max_top_logprobs"] = max(0, min(int(declared["max_top_logprobs"]), MAX_TOP_LOGPROBS))
    if changes.get("json_mode") is False and "json_schema" not in declared:
        changes["json_schema"] = False
        reasons["json_schema"] = reasons["json_mode"]
    return replace(caps, **changes, reasons=reasons)


def capabilities_for(connection: Any, api: str, model_info: Mapping[str, Any] | None = None) -> Capabilities:
    """The capabilities of `connection` (its `kind` and `declared`) speaking `api`, for a model
    described by `model_info` (an item of `list_model_info()`, optional)."""
    kind = getattr(connection, "kind", "egp")
    caps = detected(kind, api)
    declared = getattr(connection, "declared", None) or {}
    if declared:
        caps = _declared(caps, declared, _place(kind))
    model_type = str((model_info or {}).get("model_type") or "").lower()
    if model_type == "completion" and caps.chat:
        caps = replace(caps, chat=False, reasons={**caps.reasons, "chat": "This model only completes a prompt: "
                                                  "the conversation goes as a transcript."})
    return caps

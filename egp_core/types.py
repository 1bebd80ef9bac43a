"""Values that cross a boundary: requests, chunks, completions, usage, metrics.

One definition, used by the client (to build and read wire bodies) and by the
embedded local server (to validate what it receives and build what it sends).
Wire shapes follow ../shared/PROTOCOL.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class ModelParameters(BaseModel):
    """Sampling parameters. Unset (None) fields are omitted on the wire."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    stop_sequences: list[str] | None = Field(default=None, max_length=4)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, alias="topP")
    top_k: int | None = Field(default=None, ge=0, alias="topK")
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)

    def to_wire(self) -> dict[str, Any]:
        """The `model_parameters` object as scale-egp sends it (snake_case, no nulls)."""
        return self.model_dump(exclude_none=True, by_alias=False)


class Message(BaseModel):
    role: Role
    content: str


class AnswerOptions(BaseModel):
    """What only the OpenAI-shaped APIs (SGP v5, OpenAI-compatible servers) take: several
    candidates, a seed, token probabilities, JSON output. Unset fields are left out of the body."""

    model_config = ConfigDict(extra="ignore")

    n: int | None = Field(default=None, ge=1, le=8)
    seed: int | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    """None: no token probabilities; 0: the chosen tokens' only; k: also the k likeliest alternatives."""
    response_format: dict[str, Any] | None = None
    """{"type": "json_object"} or {"type": "json_schema", "json_schema": {"name", "schema"}}."""

    def is_empty(self) -> bool:
        return self == AnswerOptions()


class CompletionRequest(BaseModel):
    """What a page asks for. `prompt` for completions, `messages` for chat completions."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[Message] | None = None
    model_parameters: ModelParameters | None = None
    stream: bool = False
    account_id: str | None = None
    images: list[Any] | None = None
    options: AnswerOptions | None = None

    @property
    def parameters(self) -> ModelParameters:
        return self.model_parameters or ModelParameters()

    def completions_body(self, stream: bool) -> dict[str, Any]:
        """Body for /v2/completions, /v4/completions and /egp/v1/completions."""
        body: dict[str, Any] = {"model": self.model, "prompt": self.prompt or "", "stream": stream}
        params = self.parameters.to_wire()
        if params:
            body["model_parameters"] = params
        if self.account_id:
            body["account_id"] = self.account_id
        return body

    def chat_body(self, stream: bool) -> dict[str, Any]:
        """Body for /v4/chat-completions."""
        messages = self.messages
        if messages is None:
            messages = [Message(role="user", content=self.prompt or "")]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in messages],
            "stream": stream,
        }
        params = self.parameters.to_wire()
        if params:
            body["model_parameters"] = params
        if self.account_id:
            body["account_id"] = self.account_id
        return body


class TokenUsage(BaseModel):
    prompt: int | None = None
    completion: int | None = None
    total: int


class CompletionText(BaseModel):
    text: str = ""
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    """The wire response of the completions paths (also every streamed event)."""

    completion: CompletionText
    token_usage: TokenUsage | None = None


class ChatMessageOut(BaseModel):
    role: Role = "assistant"
    content: str = ""


class ChatCompletionText(BaseModel):
    message: ChatMessageOut
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    """The wire response of /v4/chat-completions (also every streamed event)."""

    chat_completion: ChatCompletionText
    token_usage: TokenUsage | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One streamed text delta and when it arrived (time.monotonic())."""

    text: str
    at: float


@dataclass(slots=True)
class Metrics:
    """Timing of one answer, from monotonic clocks. Seconds."""

    time_to_first_token: float | None = None
    total_time: float | None = None
    tokens_per_second: float | None = None
    chunks: int = 0


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token, its log probability, and the likeliest alternatives [(token, logprob)]."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    def to_list(self) -> list[Any]:
        """Compact and storable: [token, logprob, [[alternative, logprob], ...]]."""
        return [self.token, self.logprob, [list(t) for t in self.top]]

    @classmethod
    def from_list(cls, item: list[Any]) -> TokenLogprob:
        return cls(str(item[0]), float(item[1]), tuple((str(t), float(p)) for t, p in (item[2] or [])))


@dataclass(slots=True)
class Completion:
    """A finished (or stopped) answer.

    `candidates`: every choice's text when the server sent several (n > 1), the first being `text`;
    `logprobs`: the first choice's tokens with their probabilities, when asked for and sent."""

    text: str
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    model: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    candidates: list[str] | None = None
    logprobs: list[TokenLogprob] | None = None

"""One exception class per failure a person must tell apart.

Each carries `user_message`, one sentence for a non-programmer saying what
happened and what to do, and `detail`, the technical part (status, body
excerpt, URL without secrets) for an expander below it.
"""

from __future__ import annotations

import json
import re

HIDDEN = "[key]"
"""What a credential is replaced with in any text a person or the store sees."""

# A header or field that carries a credential, as a proxy echoing the request shows it:
# `x-api-key: sk-..`, `"Authorization": "Bearer .."`, `{'api_key': '..'}`, `?api_key=..&`.
_SECRET_FIELD = re.compile(
    r"""(?ix)
    (?P<name>["']?\b(?:x-api-key|api[-_]?key|authorization|proxy-authorization|x-auth-token|auth[-_]?token
        |access[-_]?token|refresh[-_]?token|client[-_]?secret|password|cookie|set-cookie)["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<quote>["']?)
    (?P<value>(?:(?:bearer|basic)\s+)?[^\s"',;&}\]\\]{8,})""")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
# sk-... (OpenAI and most vendors), and key-/api- tokens that hold a digit and are long enough.
_KEYISH = re.compile(r"(?i)\bsk-[A-Za-z0-9*_\-.]{4,}|\b(?:key|api)[-_](?=[A-Za-z0-9*_\-.]*\d)[A-Za-z0-9*_\-.]{12,}")
_MASKED_ECHO = re.compile(r"(Incorrect API key provided: )\S+")


def scrub(text: str | None, *secrets: str | None) -> str:
    """`text` without credentials: the `secrets` given (the client's own key), the values of
    key-carrying headers and fields (x-api-key, Authorization, api_key, cookie...), bearer tokens,
    OpenAI's masked echo of a key and key-like tokens (sk-..., key-...), each replaced by HIDDEN.

    The one scrubbing step for every client: applied to every error's message, detail and body
    before anything is stored or shown."""
    if not text:
        return text or ""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, HIDDEN)
    text = _SECRET_FIELD.sub(lambda m: m["name"] + m["sep"] + m["quote"] + HIDDEN, text)
    text = _BEARER.sub(lambda m: f"{m[1]} {HIDDEN}", text)
    text = _MASKED_ECHO.sub(rf"\1{HIDDEN}.", text)
    return _KEYISH.sub(HIDDEN, text)


class EGPError(Exception):
    """Base class. `retryable` says whether the retry policy may try again."""

    user_message = "Something went wrong while talking to the model."
    retryable = False

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status: int | None = None,
        url: str | None = None,
        body: str | None = None,
        detail: str | None = None,
    ) -> None:
        if user_message:
            self.user_message = user_message
        self.status = status
        self.url = url
        self.body = (body or "")[:500]
        self._detail = detail
        super().__init__(self.user_message)
        self.scrub()

    def scrub(self, *secrets: str | None) -> EGPError:
        """Remove credentials (see `scrub`) from everything this error shows; returns itself.

        Every error is scrubbed of key-looking text when made; a client calls this again with its
        own key before the error leaves it."""
        self.user_message = scrub(self.user_message, *secrets)
        self.body = scrub(self.body, *secrets)
        if self._detail:
            self._detail = scrub(self._detail, *secrets)
        if self.url:
            self.url = scrub(self.url, *secrets)
        messages = getattr(self, "messages", None)
        if messages:
            self.messages = [scrub(m, *secrets) for m in messages]
        self.args = (self.user_message,)
        return self

    @property
    def detail(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.url:
            parts.append(self.url)
        if self._detail:
            parts.append(self._detail)
        if self.body:
            parts.append(f"Response: {self.body}")
        return " | ".join(parts) or type(self).__name__

    @property
    def kind(self) -> str:
        return type(self).__name__


class AuthenticationError(EGPError):
    """401 / 403: missing, wrong or unauthorised API key."""

    user_message = "The API key was rejected. Check it in Settings."


class NotFoundError(EGPError):
    """404: unknown model or path."""

    user_message = "The model or address was not found. Pick another model or check the endpoint URL in Settings."


class InvalidRequestError(EGPError):
    """400 / 422: the server refused the request; `messages` holds its own words."""

    user_message = "The server refused the request."

    def __init__(self, user_message: str | None = None, *, messages: list[str] | None = None, **kw) -> None:
        self.messages = list(messages or [])
        if user_message is None and self.messages:
            user_message = "The server refused the request: " + "; ".join(self.messages)
        super().__init__(user_message, **kw)


class RateLimitError(EGPError):
    """429: too many requests. `retry_after` in seconds when the server said."""

    user_message = "The server is busy with too many requests. Wait a moment and try again."
    retryable = True

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        if user_message is None and retry_after is not None:
            user_message = f"The server is busy with too many requests. Try again in {retry_after:.0f} seconds."
        super().__init__(user_message, **kw)


class ServerError(EGPError):
    """5xx, or an error the server reported in the middle of a stream."""

    user_message = "The server had a problem answering. Try again in a moment."
    retryable = True

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(user_message, **kw)


class TimeoutError(EGPError):  # noqa: A001 - our own, distinct from the builtin
    """No connection within the connect timeout, or no byte within the read timeout."""

    user_message = "The server took too long to answer. Try again, or ask for a shorter answer."
    retryable = True


class ConnectionFailed(EGPError):
    """The server could not be reached at all."""

    user_message = "Could not reach the server. Check the endpoint URL and your network."
    retryable = True


class ProtocolError(EGPError):
    """The server answered something that is not the EGP protocol (bad JSON, cut stream)."""

    user_message = "The server sent an answer we could not read. Try again; if it keeps happening, check the endpoint URL."


class Busy(EGPError):
    """This app process already streams as many answers as it may (its cap); nothing was sent."""

    user_message = ("The app is busy: it is already writing as many answers as it can at once. "
                    "Wait for one to finish, then try again.")

    def __init__(self, user_message: str | None = None, *, limit: int | None = None, **kw) -> None:
        if limit is not None:
            kw.setdefault("detail", f"{limit} answers are streaming in this app process (its limit)")
        super().__init__(user_message, **kw)


class RequestTooLarge(EGPError):
    """The prompt does not fit the model's context (detected before sending)."""

    user_message = "The message is too long for this model. Shorten it or start a new chat."


def error_to_dict(error: EGPError) -> dict[str, str]:
    """What is saved with a failed message: kind, the person's message, the detail (scrubbed)."""
    return {"kind": error.kind, "message": scrub(error.user_message), "detail": scrub(error.detail)}


def error_from_dict(data: dict | str | None) -> EGPError | None:
    """Rebuild a saved error (an unknown kind becomes the base class)."""
    if not data:
        return None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return EGPError(data)
        if not isinstance(data, dict):
            return EGPError(str(data))
    classes = {cls.__name__: cls for cls in EGPError.__subclasses__()}
    classes["EGPError"] = EGPError
    cls = classes.get(str(data.get("kind")), EGPError)
    error = cls.__new__(cls)
    EGPError.__init__(error, data.get("message") or None, detail=data.get("detail"))
    error.retry_after = None
    error.messages = []
    return error

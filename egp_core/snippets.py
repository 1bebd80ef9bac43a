"""The request just sent, as code a person can copy and run.

Three versions: Python with the official SDK (`scale-egp` for EGP's v2/v4
APIs, `scale-gp-beta` for SGP v5, `openai` for an OpenAI-compatible server),
Python with `requests` (reading the SSE stream by hand), and `curl` (with `jq`
to print the answer). Each prints the model's answer, and carries the answer
options (candidates, seed, token probabilities, JSON mode) when the API takes
them. The API key never appears: every snippet reads it from the environment
variable EGP_API_KEY (OPENAI_API_KEY for an OpenAI-compatible server). Prompts of any
content are embedded safely (Python string literals, POSIX single quotes).
"""

from __future__ import annotations

import ast
import json
from typing import Any

from egp_core.chat import transcript
from egp_core.types import CompletionRequest

KEY_ENV = "EGP_API_KEY"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
ACCOUNT_ENV = "EGP_ACCOUNT_ID"
COMPLETIONS_PATH = "/v2/completions"
CHAT_PATH = "/v4/chat-completions"
SDK_PARAMETERS = ("temperature", "max_tokens", "stop_sequences")  # all that scale-egp's ModelParameters takes

# In a streamed answer read line by line (jq -R): skip the other SSE lines, and print any other
# line as it is (an error answer is plain JSON, not events).
_JQ_NOT_SSE = 'elif test("^[a-z]*:") or . == "" then empty else . + "\\n" end'

SNIPPET_NAMES = ("Python (scale-egp SDK)", "Python (requests)", "curl")


def _is_chat(request: CompletionRequest) -> bool:
    return request.messages is not None


def default_path(request: CompletionRequest) -> str:
    """/v4/chat-completions for a request with messages, else /v2/completions."""
    return CHAT_PATH if _is_chat(request) else COMPLETIONS_PATH


def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def py_str(text: str) -> str:
    """A Python string literal for `text` (double-quoted, readable non-ASCII)."""
    literal = json.dumps(text, ensure_ascii=False)
    try:
        if ast.literal_eval(literal) == text:
            literal.encode("utf-8")
            return literal
    except (ValueError, SyntaxError, UnicodeEncodeError):
        pass
    return ascii(text)


def py_value(value: Any, indent: int = 0) -> str:
    """A Python literal for JSON-like data, one key per line for dicts."""
    pad = " " * indent
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = "".join(f"{pad}    {py_str(str(k))}: {py_value(v, indent + 4)},\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, (list, tuple)):
        items = [py_value(v, indent + 4) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) <= 60 and "\n" not in one_line:
            return one_line
        return "[\n" + "".join(f"{pad}    {item},\n" for item in items) + pad + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a Python literal")


def sh_quote(text: str) -> str:
    """POSIX single quotes: everything literal, a ' written as '\\''."""
    return "'" + text.replace("'", "'\\''") + "'"


def _body(request: CompletionRequest, stream: bool) -> dict[str, Any]:
    return request.chat_body(stream) if _is_chat(request) else request.completions_body(stream)


def python_sdk(base_url: str, request: CompletionRequest, *, stream: bool) -> str:
    """Python with scale-egp's EGPClient and client.completions().create()/.stream() (/v2/completions)."""
    params = request.parameters.to_wire()
    sdk_params = {k: v for k, v in params.items() if k in SDK_PARAMETERS}
    unsupported = [k for k in params if k not in SDK_PARAMETERS]
    lines = [
        "import os",
        "",
        "from scale_egp.sdk.client import EGPClient",
    ]
    if sdk_params:
        lines.append("from scale_egp.sdk.types.completions import ModelParameters")
    account = py_str(request.account_id) if request.account_id else f'os.environ.get("{ACCOUNT_ENV}")'
    lines += [
        "",
        "client = EGPClient(",
        f'    api_key=os.environ.get("{KEY_ENV}") or "none",  # your key (the built-in local model needs none)',
        f"    endpoint_url={py_str(base_url)},",
        f"    account_id={account},",
        ")",
    ]
    if _is_chat(request):
        lines += ["", "# scale-egp has no chat call: the conversation is sent as one transcript prompt."]
        prompt = transcript([m for m in request.messages or []])
    else:
        prompt = request.prompt or ""
    lines += ["", f"prompt = {py_str(prompt)}"]
    if unsupported:
        lines.append(f"# Not settable through scale-egp (the requests and curl versions send them): {', '.join(unsupported)}")
    call_args = [f"    model={py_str(request.model)},", "    prompt=prompt,", "    account_id=client.account_id,"]
    if sdk_params:
        inner = "".join(f"        {k}={py_value(v, 8)},\n" for k, v in sdk_params.items())
        call_args.append("    model_parameters=ModelParameters(\n" + inner + "    ),")
    if stream:
        lines += ["", "for chunk in client.completions().stream(", *call_args, "):"]
        lines += ['    print(chunk.completion.text, end="", flush=True)', "print()"]
    else:
        lines += ["", "completion = client.completions().create(", *call_args, ")"]
        lines += ["print(completion.completion.text)"]
    return "\n".join(lines) + "\n"


def python_requests(base_url: str, request: CompletionRequest, *, stream: bool, path: str | None = None) -> str:
    """Python with `requests`; when streaming, reads the server-sent events line by line."""
    url = _url(base_url, path or default_path(request))
    text_expr = 'event["chat_completion"]["message"]["content"]' if _is_chat(request) else 'event["completion"]["text"]'
    lines = [
        "import json",
        "import os",
        "",
        "import requests",
        "",
        f"url = {py_str(url)}",
        f'headers = {{"x-api-key": os.environ.get("{KEY_ENV}", ""), "Content-Type": "application/json"}}',
        f"body = {py_value(_body(request, stream))}",
        "",
    ]
    if stream:
        lines += [
            "response = requests.post(url, headers=headers, json=body, stream=True, timeout=60)",
            "if not response.ok:",
            '    raise SystemExit(f"Error {response.status_code}: {response.text}")',
            "event_name = None",
            "for line in response.iter_lines():  # server-sent events: 'event: name', 'data: {json}', blank line",
            '    if line.startswith(b"event: "):',
            '        event_name = line[len(b"event: "):].decode()',
            '    elif line.startswith(b"data: {"):',
            '        event = json.loads(line[len(b"data: "):])',
            '        if event_name == "error":',
            '            raise SystemExit(f"Error: {event.get(\'detail\')}")',
            '        if event_name in (None, "message"):',
            f'            print({text_expr}, end="", flush=True)',
            "    elif not line:",
            "        event_name = None",
            "print()",
        ]
    else:
        lines += [
            "response = requests.post(url, headers=headers, json=body, timeout=60)",
            "if not response.ok:",
            '    raise SystemExit(f"Error {response.status_code}: {response.text}")',
            "event = response.json()",
            f"print({text_expr})",
        ]
    return "\n".join(lines) + "\n"


def curl(base_url: str, request: CompletionRequest, *, stream: bool, path: str | None = None) -> str:
    """A POSIX shell command: curl sends the request, jq prints the answer."""
    url = _url(base_url, path or default_path(request))
    body = json.dumps(_body(request, stream), indent=2, ensure_ascii=False)
    top, field = (".chat_completion", ".message.content") if _is_chat(request) else (".completion", ".text")
    answer = f'if {top} then {top}{field} elif .detail then "Error: \\(.detail)" else empty end'
    lines = [
        f"curl -sS{' -N' if stream else ''} {sh_quote(url)} \\",
        f'  -H "x-api-key: ${KEY_ENV}" \\',
        "  -H 'Content-Type: application/json' \\",
        f"  -d {sh_quote(body)} \\",
    ]
    if stream:
        jq = f'if startswith("data: {{") then .[6:] | fromjson | {answer} {_JQ_NOT_SSE}'
        lines += [f"  | jq -Rj --unbuffered {sh_quote(jq)}", "echo"]
    else:
        lines += [f"  | jq -r {sh_quote(answer)}"]
    return "\n".join(lines) + "\n"


# ---- The OpenAI shape: OpenAI-compatible servers (vLLM, Ollama, llama.cpp) and SGP v5 -------------


def _oa_parts(base_url: str, request: CompletionRequest, stream: bool, v5: bool,
              api: str | None) -> tuple[str, dict[str, Any], bool]:
    """(url, body, chat?) of the request in the OpenAI shape, on /v1 or on /v5."""
    from egp_core.connections import message_form
    from egp_core.openai_compat import OPENAI, SGP_V5, api_root, chat_body, completions_body

    flavor = SGP_V5 if v5 else OPENAI
    chat = message_form(api or "chat") == "chat"
    url = api_root(base_url) + (flavor.chat_path if chat else flavor.completions_path)
    body = (chat_body if chat else completions_body)(request, stream, top_k=flavor.top_k)
    return url, body, chat


def _oa_headers(request: CompletionRequest, v5: bool) -> str:
    if not v5:
        return f'headers = {{"Authorization": "Bearer " + os.environ.get("{OPENAI_KEY_ENV}", "")}}'
    account = py_str(request.account_id) if request.account_id else f'os.environ.get("{ACCOUNT_ENV}", "")'
    return f'headers = {{"x-api-key": os.environ.get("{KEY_ENV}", ""), "x-selected-account-id": {account}}}'


def _oa_print_choices(chat: bool, indent: str) -> list[str]:
    text = 'choice["message"]["content"]' if chat else 'choice["text"]'
    return [
        f'{indent}for choice in answer["choices"]:  # one per candidate (n)',
        f'{indent}    if len(answer["choices"]) > 1:',
        f'{indent}        print(f"--- candidate {{choice[\'index\'] + 1}} ---")',
        f"{indent}    print({text})",
    ]


def openai_python_requests(base_url: str, request: CompletionRequest, *, stream: bool, v5: bool = False,
                           api: str | None = None) -> str:
    """Python with `requests` for /v1 (key from $OPENAI_API_KEY) or SGP v5 (x-api-key from
    $EGP_API_KEY): chat completions or completions; prints the first candidate as it streams."""
    url, body, chat = _oa_parts(base_url, request, stream, v5, api)
    delta = 'choice["delta"].get("content")' if chat else 'choice.get("text")'
    lines = [
        "import json",
        "import os",
        "",
        "import requests",
        "",
        f"url = {py_str(url)}",
        _oa_headers(request, v5),
        f"body = {py_value(body)}",
        "",
    ]
    if stream:
        lines += [
            "response = requests.post(url, headers=headers, json=body, stream=True, timeout=60)",
            "if not response.ok:",
            '    raise SystemExit(f"Error {response.status_code}: {response.text}")',
            "event_name = None",
            "for line in response.iter_lines():  # server-sent events: 'event: name', 'data: {json}', blank line",
            '    if line.startswith(b"event: "):',
            '        event_name = line[len(b"event: "):].decode()',
            '    elif line.startswith(b"data: {"):',
            '        event = json.loads(line[len(b"data: "):])',
            '        if event_name == "error" or "error" in event:',
            '            raise SystemExit(f"Error: {event.get(\'error\') or event.get(\'detail\')}")',
            '        for choice in event.get("choices") or []:  # the last event may hold only the usage',
            '            if choice.get("index", 0) == 0:  # the first candidate',
            f'                print({delta} or "", end="", flush=True)',
            "    elif not line:",
            "        event_name = None",
            "print()",
        ]
    else:
        lines += [
            "response = requests.post(url, headers=headers, json=body, timeout=60)",
            "if not response.ok:",
            '    raise SystemExit(f"Error {response.status_code}: {response.text}")',
            "answer = response.json()",
            *_oa_print_choices(chat, ""),
        ]
    return "\n".join(lines) + "\n"


def openai_curl(base_url: str, request: CompletionRequest, *, stream: bool, v5: bool = False,
                api: str | None = None) -> str:
    """curl for /v1 or SGP v5, jq printing the answer (every candidate when not streaming)."""
    url, body_dict, chat = _oa_parts(base_url, request, stream, v5, api)
    body = json.dumps(body_dict, indent=2, ensure_ascii=False)
    error = '"Error: \\(.error | .message? // .)"'
    detail = '"Error: \\(.detail)"'
    if v5:
        account = sh_quote(request.account_id) if request.account_id else f'"${ACCOUNT_ENV}"'
        auth = [f'  -H "x-api-key: ${KEY_ENV}" \\', f"  -H x-selected-account-id:{account} \\"]
    else:
        auth = [f'  -H "Authorization: Bearer ${OPENAI_KEY_ENV}" \\']
    lines = [
        f"curl -sS{' -N' if stream else ''} {sh_quote(url)} \\",
        *auth,
        "  -H 'Content-Type: application/json' \\",
        f"  -d {sh_quote(body)} \\",
    ]
    piece = ".delta.content" if chat else ".text"
    if stream:
        jq = ('if startswith("data: {") then .[6:] | fromjson | '
              f"if .error then {error} elif .detail then {detail} else "
              f"(.choices[]? | select((.index // 0) == 0) | {piece} // empty) end {_JQ_NOT_SSE}")
        lines += [f"  | jq -Rj --unbuffered {sh_quote(jq)}", "echo"]
    else:
        whole = ".message.content" if chat else ".text"
        jq = (f"if .error then {error} elif .detail then {detail} else .choices | if length > 1 then "
              f'(.[] | "--- candidate \\(.index + 1) ---\\n\\({whole})") else .[0]{whole} end end')
        lines += [f"  | jq -r {sh_quote(jq)}"]
    return "\n".join(lines) + "\n"


def python_openai_sdk(base_url: str, request: CompletionRequest, *, stream: bool, v5: bool = False,
                      api: str | None = None) -> str:
    """Python with the official SDK of the shape: `scale-gp-beta` (SGPClient) for SGP v5, `openai`
    for an OpenAI-compatible server. Same call, same parameters (n, seed, logprobs, response_format)."""
    from egp_core.openai_compat import api_root

    url, body, chat = _oa_parts(base_url, request, stream, v5, api)
    root = api_root(base_url)
    if v5:
        account = py_str(request.account_id) if request.account_id else f'os.environ.get("{ACCOUNT_ENV}") or "none"'
        sdk = "scale_gp_beta"
        head = ["import os", "", "import scale_gp_beta", "from scale_gp_beta import SGPClient", "", "client = SGPClient(",
                f'    api_key=os.environ.get("{KEY_ENV}") or "none",  # your key (the built-in local model needs none)',
                f"    account_id={account},", f"    base_url={py_str(root)},", ")"]
    else:
        sdk = "openai"
        head = ["import os", "", "import openai", "from openai import OpenAI", "", "client = OpenAI(",
                f'    api_key=os.environ.get("{OPENAI_KEY_ENV}") or "none",',
                f"    base_url={py_str(root + '/v1')},", ")"]
    first = "messages" if chat else "prompt"
    call = "client.chat.completions.create(" if chat else "client.completions.create("
    args = [f"    model={py_str(body['model'])},", f"    {first}={py_value(body[first], 4)},"]
    args += [f"    {k}={py_value(v, 4)}," for k, v in body.items() if k not in ("model", first, "stream")]
    lines: list[str] = []
    if stream:
        delta = "choice.delta.content" if chat else "choice.text"
        lines += [f"stream = {call}", *args, "    stream=True,", ")", "for chunk in stream:",
                  "    for choice in chunk.choices:  # the last chunk may hold only the usage",
                  "        if choice.index == 0:  # the first candidate",
                  f'            print({delta} or "", end="", flush=True)', "print()"]
    else:
        text = "choice.message.content" if chat else "choice.text"
        lines += [f"answer = {call}", *args, ")", "for choice in answer.choices:  # one per candidate (n)",
                  "    if len(answer.choices) > 1:",
                  '        print(f"--- candidate {choice.index + 1} ---")', f"    print({text})"]
        if "logprobs" in body and chat:
            lines += ["# How sure the model was of each token of the first answer:",
                      "for t in answer.choices[0].logprobs.content:",
                      '    print(repr(t.token), f"{2.718281828 ** t.logprob:.0%}",',
                      '          ", ".join(f"{a.token!r} {2.718281828 ** a.logprob:.0%}" for a in t.top_logprobs))']
    body_lines = ["    " + line if line else "" for line in lines]
    return "\n".join([*head, "", "try:", *body_lines, f"except {sdk}.APIError as error:  # the server's own words",
                      '    raise SystemExit(f"Error: {error}")']) + "\n"


OPENAI_SNIPPET_NAMES = ("Python (openai SDK)", "Python (requests)", "curl")
V5_SNIPPET_NAMES = ("Python (scale-gp-beta SDK)", "Python (requests)", "curl")


def all_snippets(base_url: str, request: CompletionRequest, *, stream: bool, kind: str = "egp",
                 account_id: str | None = None, api: str | None = None) -> dict[str, str]:
    """The snippets by display name, three for each kind of connection and API: for EGP's v2/v4
    (and the local model on them) those of SNIPPET_NAMES; for SGP v5 (`api` "v5-chat" or
    "v5-completions") scale-gp-beta, requests and curl; for an OpenAI-compatible server
    (`kind="openai"`) the openai SDK, requests and curl. The request's options (candidates, seed,
    token probabilities, JSON mode) are in all three. `account_id` (the connection's; not a
    secret) is written in when the request has none."""
    if account_id and not request.account_id and kind != "openai":
        request = request.model_copy(update={"account_id": account_id})
    if kind == "openai" or (api or "").startswith("v5-"):
        v5 = kind != "openai"
        names = V5_SNIPPET_NAMES if v5 else OPENAI_SNIPPET_NAMES
        return {
            names[0]: python_openai_sdk(base_url, request, stream=stream, v5=v5, api=api),
            names[1]: openai_python_requests(base_url, request, stream=stream, v5=v5, api=api),
            names[2]: openai_curl(base_url, request, stream=stream, v5=v5, api=api),
        }
    return {
        SNIPPET_NAMES[0]: python_sdk(base_url, request, stream=stream),
        SNIPPET_NAMES[1]: python_requests(base_url, request, stream=stream),
        SNIPPET_NAMES[2]: curl(base_url, request, stream=stream),
    }

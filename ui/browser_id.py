"""A stable id for this browser, for "one vote per browser". Only a hash of it is ever stored
(egp_core.voting.hashed).

The id is the token of Streamlit's own XSRF cookie (`_streamlit_xsrf`), which the
server sets on the browser's first request and keeps for the browser's session:
every tab of that browser shares it, and it needs no script. The cookie's value
is masked anew on every response (tornado's "2|mask|masked token|timestamp"
format), so the token is unmasked here. Where XSRF protection is switched off,
the page sets a random first-party cookie of its own and reloads once, so the
new session sees it (a browser refusing cookies is told its vote can't count).
"""

from __future__ import annotations

import re

import streamlit as st

XSRF_COOKIE = "_streamlit_xsrf"
COOKIE = "egp_browser"
_VALID = re.compile(r"^[0-9a-f]{32}$")

_SCRIPT = """
<script>
(function () {
  var name = "COOKIE_NAME";
  var has = document.cookie.split("; ").some(function (c) { return c.indexOf(name + "=") === 0; });
  if (!has) {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var id = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    document.cookie = name + "=" + id + "; max-age=31536000; path=/; SameSite=Lax";
  }
  var flag = "egp_browser_reloaded";
  if (!window.sessionStorage.getItem(flag)) {
    window.sessionStorage.setItem(flag, "1");
    window.location.reload();
  }
})();
</script>
""".replace("COOKIE_NAME", COOKIE)


def xsrf_token(value: str | None) -> str | None:
    """The token inside a `2|mask|masked|timestamp` XSRF cookie, or None when it isn't one."""
    parts = (value or "").split("|")
    if len(parts) != 4 or parts[0] != "2":
        return None
    try:
        mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    if len(mask) != 4 or len(masked) < 16:
        return None
    token = bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
    return f"{token.hex()}-{parts[3]}"


def browser_id() -> str | None:
    """This browser's id; None when it has none yet (the page then makes one and reloads)."""
    cookies = st.context.cookies or {}
    token = xsrf_token(cookies.get(XSRF_COOKIE))
    if token:
        return token
    value = cookies.get(COOKIE) or ""
    if _VALID.match(value):
        return value
    st.html(_SCRIPT, unsafe_allow_javascript=True)
    return None

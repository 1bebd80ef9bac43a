"""The browser id behind "one vote per browser": Streamlit's XSRF cookie, unmasked."""

from __future__ import annotations

import os

from ui.browser_id import xsrf_token


def masked(token: bytes, stamp: str = "1795987055") -> str:
    mask = os.urandom(4)
    return f"2|{mask.hex()}|{bytes(b ^ mask[i % 4] for i, b in enumerate(token)).hex()}|{stamp}"


def test_the_same_token_under_any_mask_is_the_same_browser():
    token = os.urandom(16)
    ids = {xsrf_token(masked(token)) for _ in range(20)}
    assert len(ids) == 1 and token.hex() in ids.pop()
    assert xsrf_token(masked(os.urandom(16))) != xsrf_token(masked(token))


def test_anything_else_is_no_id():
    for value in (None, "", "garbage", "2|zz|aa|1", "1|00000000|" + "00" * 16 + "|1", "2|0000|" + "00" * 16 + "|1",
                  "2|00000000|00|1"):
        assert xsrf_token(value) is None

"""Loud checks of what egp_core relies on inside requests and urllib3 (see requirements.txt).

The client learns a request's connection through urllib3's public `HTTPConnection.request` (so
Stop can cut a request still waiting for its status line), finds a response's socket through the
public `HTTPResponse.connection`, and reads streams fast through one private attribute,
`HTTPResponse._fp.fp`. If an upgrade changes any of these, these tests fail and say what to fix,
instead of streams silently getting slower or Stop silently waiting for the server."""

from __future__ import annotations

import socket

import requests
import urllib3

from egp_core import client as client_module
from egp_core.client import EGPClient
from egp_core.sse import EventSource, iter_body, response_socket, socket_file

VERSIONS = f"urllib3 {urllib3.__version__}, requests {requests.__version__}"


def streamed_response(fake) -> tuple[EGPClient, requests.Response, list]:
    seen: list = []
    client = EGPClient(fake.base_url, "key")
    body = {"model": "fake-model", "prompt": "Hi", "stream": True}
    response = client._send("POST", fake.base_url + "/v2/completions", body, stream=True, on_connection=seen.append)
    return client, response, seen


def test_the_client_learns_each_requests_connection_before_the_status_line(fake_egp):
    client, response, seen = streamed_response(fake_egp)
    try:
        assert seen, (f"{VERSIONS}: urllib3 no longer calls HTTPConnection.request() of the pool's ConnectionCls "
                      "for a request. egp_core/client.py (_TrackingAdapter) uses it so that Stop can cut a "
                      "request still waiting for the server's first byte. Fix the adapter or bound urllib3 "
                      "below this version in requirements.txt.")
        assert isinstance(seen[0], client_module._TrackingHTTPConnection)
        assert isinstance(seen[0].sock, socket.socket)
    finally:
        response.close()
        client.close()


def test_a_streamed_responses_socket_and_socket_file_are_reachable(fake_egp):
    client, response, _ = streamed_response(fake_egp)
    try:
        assert isinstance(response_socket(response), socket.socket), (
            f"{VERSIONS}: HTTPResponse.connection.sock no longer gives the socket of a streamed response. "
            "egp_core/sse.py (response_socket) needs it to close a stream from another thread (Stop).")
        assert socket_file(response) is not None, (
            f"{VERSIONS}: urllib3's private HTTPResponse._fp.fp (the socket file with read1) is gone or "
            "changed. egp_core/sse.py's fast SSE path reads it; streams now fall back to urllib3's slower "
            "read1. Update socket_file() in egp_core/sse.py, or bound urllib3 below this version in "
            "requirements.txt.")
        assert b"".join(iter_body(response)).count(b"data:") >= 2
    finally:
        response.close()
        client.close()



def test_sseclient_still_has_what_event_source_overrides():
    """egp_core/sse.py's EventSource replaces sseclient-py's `_read` and reads its `_event_source`
    and `_char_enc` (requirements.txt bounds sseclient-py below 2)."""
    import sseclient

    client = sseclient.SSEClient([b"data: x\n\n"], "utf-8")
    reason = ("sseclient-py changed SSEClient's private _read/_event_source/_char_enc, which "
              "egp_core/sse.py's EventSource overrides; update EventSource or bound sseclient-py lower.")
    assert callable(getattr(sseclient.SSEClient, "_read", None)), reason
    assert getattr(client, "_event_source", None) == [b"data: x\n\n"] and client._char_enc == "utf-8", reason
    assert [e.data for e in EventSource([b"data: a\n\n", b"data: b\r\n\r\n"]).events()] == ["a", "b"], reason

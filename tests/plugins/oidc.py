"""Fixture: a real OpenID Connect provider on 127.0.0.1 (the `oidc-provider-mock` package).

`oidc_provider` is its base URL; its discovery document is at
`<url>/.well-known/openid-configuration`. Any client id and secret are accepted;
a person signs in on its form by typing a subject, whose `email` claim is that
subject unless set otherwise (`PUT <url>/users/<sub>`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[str]:
    import oidc_provider_mock
    import werkzeug.serving

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="oidc-provider")
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()

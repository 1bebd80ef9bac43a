"""Team mode with voting kept to signed-in people, end to end: a real OpenID Connect provider
(oidc-provider-mock), the app as a `streamlit run` process, phones in headless Chromium.

A phone scans the voting code signed out, signs in, and lands on the vote page of that demo (the
sign-in's redirect goes to the app's root and forgets the link); the same person in another browser
cannot vote a second time."""

from __future__ import annotations

import pytest

from egp_core.store import open_store
from egp_core.voting import DemoDay
from tests.plugins.app import RunningApp, free_port, wait_idle
from tests.test_browser_demo import PHONE

pytestmark = pytest.mark.browser

CAROL = "carol@example.com"


@pytest.fixture(scope="module")
def voting_team(oidc_provider, tmp_path_factory):
    data = tmp_path_factory.mktemp("voting-team")
    port = free_port()
    secrets = data / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{"voting-team-cookie-secret" * 2}"\n'
        'client_id = "playground"\nclient_secret = "playground-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n'
        "[playground]\nvote_requires_sign_in = true\n"
    )
    env = {"STREAMLIT_SECRETS_FILES": str(secrets), "EGP_PLAYGROUND_LOCAL": "0", "EGP_PLAYGROUND_DB_URL": "",
           "EGP_ENDPOINT_URL": ""}
    app = RunningApp(env, data, port).start()
    yield app
    app.stop()


def phone_signs_in_from_the_vote_link(browser, app, code: str, email: str):
    context = browser.new_context(**PHONE)
    phone = context.new_page()
    phone.set_default_timeout(60_000)
    phone.goto(f"{app.url}/?vote={code}")
    phone.get_by_text("Voting here is for signed-in people").wait_for()
    phone.get_by_role("button", name="Sign in").click()
    phone.locator("input[name=sub]").fill(email)
    phone.get_by_role("button", name="Authorize", exact=True).click()
    phone.get_by_text(f"code {code}").wait_for()  # back on the vote page of that demo, not the chat
    wait_idle(phone)
    return context, phone


def test_a_phone_signs_in_from_the_voting_link_and_votes_once_as_that_person(voting_team, browser):
    store = open_store(f"sqlite:///{voting_team.data_dir / 'history.db'}")
    day = DemoDay(store)
    demo = day.start_demo("presenter@example.com", "The room's demo")
    rnd = day.open_round(demo, store.create_conversation("presenter@example.com", "q", kind="compare"),
                         [{"model": "alpha"}, {"model": "beta"}])
    first, phone = phone_signs_in_from_the_vote_link(browser, voting_team, demo.code, CAROL)
    phone.get_by_role("button", name="Answer B").click()
    phone.get_by_text("Your vote for B is counted").wait_for()
    phone.goto(voting_team.url)  # the link is not remembered past its one use: the root is the app again
    phone.get_by_text(f"Signed in as {CAROL}").wait_for()
    second, other = phone_signs_in_from_the_vote_link(browser, voting_team, demo.code, CAROL)
    other.get_by_text("You voted: B").wait_for()  # Carol, another browser: no second vote
    assert other.get_by_role("button", name="Answer A").count() == 0
    assert day.rounds.tally(rnd.id) == {"B": 1}
    first.close()
    second.close()
    store.close()

"""Team mode under AppTest (fake EGP server): what a signed-out visitor can reach (only the
sign-in page, or one real shared conversation read-only), and who changes the shared price table."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from egp_core.store import open_store
from egp_core.voting import DemoDay
from tests.plugins.apptest import APP, markdown

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
    "client_id": "id", "client_secret": "secret",
    "server_metadata_url": "https://example.com/.well-known/openid-configuration",
}
ANN, BOB = "ann@example.com", "bob@example.com"
PAGES = ("views/chat.py", "views/compare.py", "views/evaluate.py", "views/prompts.py", "views/usage.py",
         "views/settings.py")


def visit(params: dict[str, str] | None = None, *, email: str | None = None, page: str | None = None,
          admins: list[str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    if admins is not None:
        at.secrets["playground"] = {"admins": admins}
    at.user = {"is_logged_in": True, "email": email} if email else {"is_logged_in": False}
    for k, v in (params or {}).items():
        at.query_params[k] = v
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def everything_shown(at: AppTest) -> str:
    parts = []
    for kind in ("title", "markdown", "caption", "info", "warning", "error", "success", "code"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [b.label for b in at.button] + [s.label for s in at.selectbox]
    return "\n".join(parts)


def is_sign_in_page(at: AppTest) -> bool:
    return ([b.label for b in at.button] == ["Sign in"] and not at.chat_input and not at.selectbox
            and not at.text_input and not at.dataframe and not at.sidebar.children.get(0))


@pytest.fixture
def anns_conversation(app_env):
    """Ann's conversation (with an answer), and a share link to another of hers."""
    store = open_store()
    private = store.create_conversation(ANN, "Ann's private plans")
    store.add_message(private, "user", "Ann's private question")
    shared = store.create_conversation(ANN, "Ann's shared notes")
    store.add_message(shared, "user", "A question Ann shares")
    store.add_message(shared, "assistant", "An answer Ann shares")
    token = store.create_share(shared, ANN)
    store.close()
    return private, token


@pytest.fixture
def anns_demo(app_env):
    """Ann's demo (one revealed round the room voted on) with a share link, and a revoked link to
    another demo of hers."""
    day = DemoDay(open_store())
    demo = day.start_demo(ANN, "Ann's demo day")
    rnd = day.open_round(demo, "conv-1", [{"model": "alpha"}, {"model": "beta"}])
    for i, choice in enumerate(["B", "B", "A"]):
        assert day.vote(demo.code, f"phone-{i}", choice, "10.0.0.1").counted
    day.reveal(rnd.id)
    token = day.rounds.create_share(demo.id, ANN)
    other = day.start_demo(ANN, "Ann's other demo")
    revoked = day.rounds.create_share(other.id, ANN)
    assert day.rounds.delete_share(other.id, ANN)
    day.rounds.store.close()
    return {"id": demo.id, "token": token, "revoked": revoked}


@pytest.mark.parametrize("params", [
    {}, {"share": ""}, {"share": " "}, {"share": "%20"}, {"share": "\t"}, {"share": "bogus"},
    {"share": "bogus", "c": "x"}, {"c": "PRIVATE"}, {"cmp": "PRIVATE"}, {"share": "", "c": "PRIVATE"},
    {"eval_share": ""}, {"eval_share": " "}, {"eval_share": "bogus"}, {"vote": " "}, {"vote": "bogus"},
    {"vote": "", "share": ""}, {"shared_prompt": ""}, {"shared_prompt": "bogus"}, {"p": "PRIVATE"},
    {"demo_share": ""}, {"demo_share": " "}, {"demo_share": "bogus"}, {"demo_share": "REVOKED"},
    {"demo": "DEMO"}, {"demo_share": "", "demo": "DEMO"},
])
@pytest.mark.parametrize("page", PAGES)
def test_a_signed_out_visitor_meets_only_the_sign_in_page(anns_conversation, anns_demo, params, page):
    private, _ = anns_conversation
    real = {"PRIVATE": private, "REVOKED": anns_demo["revoked"], "DEMO": anns_demo["id"]}
    params = {k: real.get(v, v) for k, v in params.items()}
    at = visit(params, page=page)
    assert is_sign_in_page(at), everything_shown(at)
    shown = everything_shown(at)
    assert "Ann's" not in shown and "Local model" not in shown and "Prices" not in shown


@pytest.mark.parametrize("page", PAGES)
def test_a_real_share_link_opens_only_its_conversation_read_only(anns_conversation, page):
    _, token = anns_conversation
    at = visit({"share": token}, page=page)
    assert "A question Ann shares" in markdown(at) and "An answer Ann shares" in markdown(at)
    assert "Ann's private question" not in everything_shown(at)
    assert not at.chat_input and not at.button and not at.selectbox and not at.text_input
    assert not at.sidebar.children.get(0)  # no navigation, no connections, no history


@pytest.mark.parametrize("page", PAGES)
def test_a_real_demo_share_link_opens_only_that_demo_read_only(anns_demo, page):
    at = visit({"demo_share": anns_demo["token"]}, page=page)
    shown = everything_shown(at)
    assert "Ann's demo day" in shown and [h.value for h in at.subheader] == ["Round 1"]
    assert "The room picked B (beta) with 2 of 3 votes." in shown and "**3 votes**" in shown
    assert {r["Contestant"]: r["Wins"] for r in at.table[0].value.to_dict("records")} == {"beta": 1, "alpha": 0}
    assert "Ann's other demo" not in shown and "Sign in" not in shown
    assert not at.button and not at.chat_input and not at.selectbox and not at.text_input
    assert not at.sidebar.children.get(0)  # no navigation, no connections, no history


def test_a_signed_in_person_with_an_empty_share_link_gets_no_chat_either(anns_conversation):
    at = visit({"share": " "}, email=BOB)
    assert "This share link is not valid" in everything_shown(at)
    assert not at.chat_input


# ---- admins and the shared price table ------------------------------------------------------------


def prices_editable(at: AppTest) -> bool:
    return any((d.key or "").startswith("prices-editor-") for d in at.dataframe) and any(
        b.label == "Save prices" for b in at.button)


def test_only_admins_change_the_price_table_others_see_it_read_only(app_env):
    bob = visit(email=BOB, page="views/settings.py", admins=[ANN])
    assert not prices_editable(bob)
    (table,) = bob.dataframe  # still there to read
    assert "gpt-4o" in set(table.value["Model"])
    assert any("only the team's admins can change them" in i.value for i in bob.info)

    ann = visit(email="Ann@Example.com", page="views/settings.py", admins=[ANN])  # emails match any case
    assert prices_editable(ann)
    assert not [i for i in ann.info if "admins" in i.value]
    (editor,) = [d for d in ann.dataframe if (d.key or "").startswith("prices-editor-")]
    ann.session_state[editor.key] = {"edited_rows": {}, "deleted_rows": [],
                                     "added_rows": [{"Model": "fake-model", "Prompt $ / 1K": 1.0,
                                                     "Completion $ / 1K": 2.0}]}
    ann.run()
    next(b for b in ann.button if b.label == "Save prices").click().run()
    assert any(s.value.startswith("Prices saved.") for s in ann.success)
    store = open_store()
    try:
        assert store.get_prices() == {"fake-model": (1.0, 2.0)}
    finally:
        store.close()


def test_team_mode_without_admins_says_how_to_name_one(app_env):
    at = visit(email=BOB, page="views/settings.py")
    assert not prices_editable(at)
    assert any("[playground] admins" in i.value for i in at.info)

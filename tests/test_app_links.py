"""Links in the address bar, as a stranger types them: blank, padded, repeated, several at once.

Every share-like parameter (?vote=, ?share=, ?demo_share=, ?eval_share=, ?shared_prompt=) behaves the
same way when its value is empty or blank: the page of that link says the link is not valid (never the
chat, never an error of ours). A real link opens its page at the app's root address, in personal mode
and for a signed-in person in team mode.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from egp_core.evaluate.datasets import read_pasted
from egp_core.evaluate.records import Records
from egp_core.evaluate.runner import Contestant, RunConfig
from egp_core.prompts import PromptContent
from egp_core.store import open_store
from egp_core.store.prompts import PromptLibrary
from egp_core.voting import DemoDay
from tests.plugins.apptest import APP, markdown
from tests.test_app_team_mode import AUTH, everything_shown
from tests.test_app_team_mode import visit as team_visit

NOT_VALID = {
    "vote": "This voting link is not valid",
    "share": "This share link is not valid",
    "demo_share": "This share link is not valid",
    "eval_share": "This share link is not valid",
    "shared_prompt": "This share link is not valid",
}
BLANKS = ("", " ", "\t", "  \n ")
ANN = "ann@example.com"


def visit(params: dict[str, str], *, email: str | None = None) -> AppTest:
    """The app at its root address with these query parameters; team mode signed in when `email`."""
    at = AppTest.from_file(APP, default_timeout=60)
    if email:
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": True, "email": email}
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def is_the_chat(at: AppTest) -> bool:
    return bool(at.chat_input) or "EGP Playground" in [t.value for t in at.title]


@pytest.fixture
def links(app_env):
    """One real link of every kind, owned by the local owner (personal mode)."""
    store = open_store()
    conv = store.create_conversation("local", "Shared chat title")
    store.add_message(conv, "user", "A shared question")
    day = DemoDay(store)
    demo = day.start_demo("local", "The demo")
    day.open_round(demo, "conv-1", [{"model": "alpha"}, {"model": "beta"}])
    recs = Records(store)
    did = recs.save_dataset("local", read_pasted("question\nWhere?\n"))
    config = RunConfig(dataset_id=did, mapping={"question": "question"},
                       contestants=[Contestant(connection_id="env-egp", model="fake-model", template="{{question}}",
                                               label="A")], graders=[{"kind": "json"}])
    run = recs.create_run("local", "A shared evaluation", did, config.to_dict(), config.total(1))
    library = PromptLibrary(store)
    prompt = library.create("local", PromptContent(name="A shared prompt", template="Say {{x}}"))
    found = {
        "vote": demo.code, "share": store.create_share(conv, "local"),
        "demo_share": day.rounds.create_share(demo.id, "local"), "eval_share": recs.share(run, "local"),
        "shared_prompt": library.create_share(prompt.prompt_id, "local"),
    }
    store.close()
    return found


SHOWS = {"vote": "The demo", "share": "Shared chat title", "demo_share": "The demo",
         "eval_share": "A read-only copy shared with you.", "shared_prompt": "A shared prompt"}


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize("name", list(NOT_VALID))
def test_a_blank_link_says_it_is_not_valid_and_shows_no_chat(links, name, blank):
    at = visit({name: blank})
    assert NOT_VALID[name] in everything_shown(at)
    assert not is_the_chat(at)


@pytest.mark.parametrize("name", list(NOT_VALID))
def test_a_blank_link_says_it_is_not_valid_to_a_signed_in_person_too(links, name):
    at = visit({name: " "}, email=ANN)
    assert NOT_VALID[name] in everything_shown(at)
    assert not is_the_chat(at)


@pytest.mark.parametrize("name", list(NOT_VALID))
def test_a_real_link_opens_its_page_at_the_root_address_padded_or_not(links, name):
    for value in (links[name], f"  {links[name]} "):
        at = visit({name: value})
        assert SHOWS[name] in everything_shown(at), (name, value)
        assert not is_the_chat(at)


@pytest.mark.parametrize("name", ["eval_share", "shared_prompt"])
def test_a_signed_in_person_opens_a_shared_evaluation_or_prompt_at_the_root_address(links, name):
    at = visit({name: links[name]}, email="bob@example.com")
    assert SHOWS[name] in everything_shown(at)
    assert not is_the_chat(at)


def test_a_blank_link_next_to_a_real_one_does_not_hide_it(links):
    at = visit({"vote": "", "share": links["share"]})
    assert "Shared chat title" in everything_shown(at)
    at = visit({"share": " ", "demo_share": links["demo_share"]})
    assert "The demo" in everything_shown(at) and NOT_VALID["share"] not in everything_shown(at)


# ---- a NUL character (%00) in a link, and a database that fails, on PostgreSQL ---------------------

def went_wrong(at: AppTest) -> bool:
    return any("Something went wrong" in e.value or "could not be read" in e.value for e in at.error)


@pytest.fixture
def team_on_postgres(fresh_app, app_env, postgres_database):
    fresh_app.setenv("EGP_PLAYGROUND_DB_URL", postgres_database)
    return postgres_database


@pytest.mark.parametrize("name", list(NOT_VALID))
def test_a_nul_in_a_link_gets_the_sign_in_page_on_postgresql(team_on_postgres, name):
    at = team_visit({name: "abc\x00def"}, email=None)
    assert [b.label for b in at.button] == ["Sign in"]
    assert "This link is not valid" in everything_shown(at)


@pytest.mark.parametrize(("param", "page"), [
    ("c", "views/chat.py"), ("cmp", "views/compare.py"), ("run", "views/evaluate.py"), ("p", "views/prompts.py"),
    ("demo", "views/compare.py"), ("share", None), ("eval_share", None), ("shared_prompt", None),
    ("demo_share", None),
])
def test_a_nul_in_an_id_is_no_error_for_a_signed_in_person_on_postgresql(team_on_postgres, param, page):
    at = team_visit({param: "x\x00"}, email=ANN, page=page)
    assert not went_wrong(at), everything_shown(at)


def test_a_share_link_while_the_database_fails_gets_the_sign_in_page(team_on_postgres):
    import psycopg

    team_visit({"share": "not-yet"}, email=None)  # the app opened its store (it asked)
    url, schema = team_on_postgres.split("?")[0], team_on_postgres.split("%3D")[-1]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')  # every table gone: each query fails
    at = team_visit({"share": "some-token"}, email=None)
    assert [b.label for b in at.button] == ["Sign in"]



# ---- voting kept to signed-in people: one vote per person, whichever browser -------------------------

def test_when_voting_needs_sign_in_a_person_votes_once_from_any_browser(app_env):
    store = open_store()
    day = DemoDay(store)
    demo = day.start_demo(ANN, "Ann's demo")
    rnd = day.open_round(demo, "conv-1", [{"model": "alpha"}, {"model": "beta"}])

    def phone(email: str) -> AppTest:  # a browser of its own (AppTest sends no cookies: no browser id)
        at = AppTest.from_file(APP, default_timeout=60)
        at.secrets["auth"] = AUTH
        at.secrets["playground"] = {"vote_requires_sign_in": True}
        at.user = {"is_logged_in": True, "email": email}
        at.query_params["vote"] = demo.code
        at.run()
        assert not at.exception, at.exception
        return at

    laptop = phone("bob@example.com")
    next(b for b in laptop.button if b.label == "Answer B").click().run()
    assert any("Your vote for B is counted" in s.value for s in laptop.success)
    second = phone("bob@example.com")  # Bob again, in another browser
    assert not [b for b in second.button if b.label.startswith("Answer")]
    assert any("You voted: B" in s.value for s in second.success)
    carol = phone("carol@example.com")
    next(b for b in carol.button if b.label == "Answer A").click().run()
    assert day.rounds.tally(rnd.id) == {"B": 1, "A": 1}
    store.close()


# ---- an id padded with spaces (a link pasted with its neighbour's space, %20) --------------------------

def test_a_padded_conversation_comparison_run_or_prompt_id_still_opens_it(links):
    store = open_store()
    chat = store.list_conversations("local")[0]
    cmp = store.create_conversation("local", "My comparison", kind="compare")
    store.add_message(cmp, "user", "Which is better?")
    store.close()
    at = visit({"c": f" {chat.id}  "})
    assert "A shared question" in markdown(at) and not at.toast
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["cmp"] = f"{cmp}\t"
    at.run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    assert at.session_state["compare_run"] == cmp
    run = Records(open_store()).list_runs("local")[0]
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = f" {run.id} "
    at.run()
    at.switch_page("views/evaluate.py").run()
    assert not at.exception, at.exception
    assert at.session_state["eval_run"] == run.id


def test_a_real_voting_link_that_needs_sign_in_says_so_not_that_it_is_invalid(app_env):
    store = open_store()
    code = DemoDay(store).start_demo(ANN, "Ann's demo").code
    store.close()
    for value, valid in ((code, True), (code.lower(), True), ("NOPE42", False)):
        at = AppTest.from_file(APP, default_timeout=60)
        at.secrets["auth"] = AUTH
        at.secrets["playground"] = {"vote_requires_sign_in": True}
        at.user = {"is_logged_in": False}
        at.query_params["vote"] = value
        at.run()
        assert not at.exception, at.exception
        assert [b.label for b in at.button] == ["Sign in"] and not at.chat_input
        shown = everything_shown(at)
        assert ("This link is not valid" in shown) is not valid, (value, shown)
        assert ("Voting here is for signed-in people" in shown) is valid, (value, shown)
        assert "Ann's demo" not in shown

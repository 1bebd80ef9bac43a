"""The Prompts page and the prompt picker of Chat and Compare, under AppTest, against the fake EGP
server over real HTTP."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from egp_core.prompts import PromptContent
from egp_core.store import open_store
from egp_core.store.prompts import PromptLibrary
from tests.plugins.apptest import APP, captions, generation_bodies, markdown, start

PROMPTS = "views/prompts.py"
SUMMARISE = PromptContent(name="Summarise", template="Summarise {{text}} in {{words|50}} words.",
                          system_prompt="You write for {{reader|busy people}}.")


def library() -> PromptLibrary:
    return PromptLibrary(open_store())


def ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r} in {[b.label for b in at.button]}"
    return ok(buttons[0].click().run())


def prompts_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return ok(at.switch_page(PROMPTS).run())


def code_blocks(at: AppTest) -> list[str]:
    return [c.value for c in at.main.code]


def test_create_a_prompt_with_variables(app_env):
    at = click(prompts_page(), "New prompt")
    at.text_input(key="pe-name-new").set_value("Summarise").run()
    at.text_area(key="pe-template-new").set_value("Summarise {{text}} in {{words|50}} words.").run()
    assert "Variables: {{text}}, {{words}} (default: 50)" in captions(at)
    at.text_area(key="pe-template-new").set_value("Summarise {{the text}}").run()
    assert any("{{the text}} has a space in its name" in w.value for w in at.warning)
    at = click(at, "Save prompt")
    assert [e.value for e in at.error] == [
        "In the user message: The template {{the text}} has a space in its name: names are letters, digits "
        "and _ only, like {{the_text}} (line 1, column 11)."]
    assert library().list("local") == []  # nothing saved
    at.text_area(key="pe-template-new").set_value("Summarise {{text}} in {{words|50}} words.").run()
    at.text_input(key="pe-note-new").set_value("first try").run()
    at = click(at, "Save prompt")
    [saved] = library().list("local")
    assert (saved.name, saved.latest.version, saved.latest.note) == ("Summarise", 1, "first try")
    assert at.title[0].value == "Summarise"
    assert at.query_params["p"] in (saved.id, [saved.id])


def test_edit_makes_a_new_version_and_the_diff_shows_it(app_env):
    v1 = library().create("local", SUMMARISE)
    at = prompts_page({"p": v1.prompt_id})
    assert at.title[0].value == "Summarise"
    at = click(at, "Save as v2")
    assert "Nothing changed since v1, so no new version was made." in [i.value for i in at.info]
    at.text_area(key=f"pe-template-{v1.prompt_id}-v1").set_value("Summarise {{text}} in {{words|30}} words.\nBe kind.").run()
    at.text_input(key=f"pe-note-{v1.prompt_id}-v1").set_value("shorter").run()
    at = click(at, "Save as v2")
    versions = library().versions(v1.prompt_id, "local")
    assert [(v.version, v.note) for v in versions] == [(2, "shorter"), (1, "")]
    assert versions[1].content == SUMMARISE  # the old version is untouched
    assert any(m.startswith("**v2** (latest)") for m in markdown(at))
    # the diff: v1 on the left, v2 on the right
    assert at.selectbox(key=f"diff-{v1.prompt_id}-from").value == 1
    assert at.selectbox(key=f"diff-{v1.prompt_id}-to").value == 2
    assert "**User message**" in markdown(at)
    codes = code_blocks(at)
    assert "- Summarise {{text}} in {{words|50}} words.\n  " in codes
    assert "+ Summarise {{text}} in {{words|30}} words.\n+ Be kind." in codes
    at.selectbox(key=f"diff-{v1.prompt_id}-from").set_value(2).run()
    assert "v2 and v2 say the same." in [i.value for i in at.info]


def test_restore_an_old_version_as_the_newest(app_env):
    lib = library()
    v1 = lib.create("local", SUMMARISE)
    lib.save(v1.prompt_id, "local", PromptContent(name="Summarise", template="Other {{x}}"))
    at = click(prompts_page({"p": v1.prompt_id}), "Restore v1 as newest")
    versions = lib.versions(v1.prompt_id, "local")
    assert [(v.version, v.note) for v in versions][0] == (3, "Restored from v1")
    assert versions[0].content == SUMMARISE
    assert at.text_area(key=f"pe-template-{v1.prompt_id}-v3").value == SUMMARISE.template


def test_search_tags_delete_asks_first_and_undo(app_env):
    lib = library()
    a = lib.create("local", SUMMARISE, tags=["writing"])
    b = lib.create("local", PromptContent(name="Translate", template="Into {{language}}: {{text}}"), tags=["lang"])
    at = prompts_page()
    assert [b.label for b in at.sidebar.button if "· v" in b.label] == ["Translate · v1", "Summarise · v1"]
    at.sidebar.text_input(key="prompt_search").set_value("summar").run()
    assert [b.label for b in at.sidebar.button if "· v" in b.label] == ["Summarise · v1"]
    at.sidebar.text_input(key="prompt_search").set_value("").run()
    at.sidebar.selectbox(key="prompt_tag").set_value("lang").run()
    assert [b.label for b in at.sidebar.button if "· v" in b.label] == ["Translate · v1"]
    at.sidebar.selectbox(key="prompt_tag").set_value("").run()
    at = click(at, "Translate · v1")
    at.text_input(key=f"prompt-tags-{b.prompt_id}").set_value("Lang, lang , work").run()
    assert lib.get(b.prompt_id, "local").tags == ["lang", "work"]
    assert at.text_input(key=f"prompt-tags-{b.prompt_id}").value == "Lang, lang , work"  # no rerun loop
    at = click(at, "Summarise · v1")
    at = click(at, "Delete prompt")
    assert any("Delete 'Summarise'?" in w.value for w in at.warning)
    assert lib.get(a.prompt_id, "local") is not None  # asked, not deleted yet
    at = click(at, "Yes, delete")
    assert lib.get(a.prompt_id, "local") is None
    assert any("Deleted 'Summarise'." in s.value for s in at.success)
    at = click(at, "Undo")
    assert lib.get(a.prompt_id, "local").name == "Summarise"
    assert at.title[0].value == "Summarise"


def test_a_share_link_opens_a_read_only_copy(app_env):
    lib = library()
    v1 = lib.create("alice@example.org", SUMMARISE)
    lib.save(v1.prompt_id, "alice@example.org", PromptContent(name="Summarise", template="v2 {{text}}"))
    token = lib.create_share(v1.prompt_id, "alice@example.org")
    at = prompts_page({"shared_prompt": token})
    assert at.title[0].value == "Summarise"
    assert "v2 {{text}}" in code_blocks(at)
    assert not any(b.label.startswith(("Save", "Restore", "Delete")) for b in at.button)
    at = click(at, "Copy to my prompts")
    [copy] = lib.list("local")
    assert copy.id != v1.prompt_id and [v.version for v in lib.versions(copy.id, "local")] == [2, 1]
    bad = prompts_page({"shared_prompt": "nope"})
    assert "This share link is not valid" in bad.error[0].value


def test_use_a_prompt_in_chat_fill_its_variables_and_send(app_env):
    lib = library()
    v1 = lib.create("local", SUMMARISE)
    lib.save(v1.prompt_id, "local", PromptContent(name="Summarise", template="Summarise {{text}} in {{words|50}} "
                                                  "words.", system_prompt="You write for {{reader|busy people}}.",
                                                  parameters={"temperature": 0.2}))
    app_env.reply(text="A short summary.")
    at = start()
    at.selectbox(key="picker-chat-prompt").set_value(v1.prompt_id).run()
    assert at.selectbox(key=f"picker-chat-version-{v1.prompt_id}").value == 2
    assert at.text_area(key="picker-chat-var-text").placeholder == "Required"
    assert at.text_input(key="picker-chat-var-words").placeholder == "Default: 50"
    assert [w.value for w in at.warning] == ["Fill in text: the prompt has no value for it."]
    assert [b for b in at.button if b.label == "Send"][0].disabled
    at.text_area(key="picker-chat-var-text").set_value("the quarterly report").run()
    assert "Summarise the quarterly report in 50 words." in code_blocks(at)  # the live preview
    assert "You write for busy people." in code_blocks(at)
    at = click(at, "Send")
    body = generation_bodies(app_env)[-1]
    assert "Summarise the quarterly report in 50 words." in body["prompt"]
    assert "You write for busy people." in body["prompt"]
    assert body["model_parameters"]["temperature"] == 0.2  # the prompt's parameters went to the sidebar
    assert at.sidebar.radio(key="preset").value == "Custom"
    assert "A short summary." in markdown(at)
    receipt = next(c for c in captions(at) if "fake-model" in c)
    assert receipt.endswith("from prompt 'Summarise' v2")
    assert "From prompt 'Summarise' v2" in captions(at)
    store = open_store()
    conv = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    question, answer = store.messages(conv)
    assert question.parameters["prompt"] == {"id": v1.prompt_id, "version": 2, "name": "Summarise"}
    assert answer.parameters["prompt"] == question.parameters["prompt"]
    at = click(at, "Regenerate")  # the same question: the new answer names the prompt too
    assert store.messages(conv)[-1].parameters["prompt"]["version"] == 2
    assert store.messages(conv)[-1].id != answer.id
    # an older version, picked by hand
    app_env.reply(text="Another.")
    at.selectbox(key=f"picker-chat-version-{v1.prompt_id}").set_value(1).run()
    at = click(at, "Send")
    assert store.messages(conv)[-1].parameters["prompt"]["version"] == 1


def test_save_a_question_as_a_prompt(app_env):
    app_env.reply(text="Sure.")
    at = start()
    at.chat_input[0].set_value("Translate {{text}} into French, please").run()
    at = click(ok(at), "Save as prompt")
    assert at.text_input(key="pe-name-new").value == "Translate {{text}} into French, please"
    assert at.text_area(key="pe-template-new").value == "Translate {{text}} into French, please"
    assert "Variables: {{text}}" in captions(at)
    at = click(at, "Save prompt")
    [saved] = library().list("local")
    assert saved.latest.content.template == "Translate {{text}} into French, please"


def test_use_a_prompt_in_compare_fills_once_for_every_pane(app_env):
    v1 = library().create("local", PromptContent(name="Haiku", template="A haiku about {{topic}}"))
    app_env.reply(text="Leaves fall.")
    at = start()
    at = click(at.switch_page(PROMPTS).run(), "Haiku · v1")
    at = click(at, "Use in Compare")
    assert at.title[0].value == "Compare models"
    ok(at.switch_page("views/compare.py").run())  # AppTest reruns the page it was told, not the switched-to one
    assert at.selectbox(key="picker-compare-prompt").value == v1.prompt_id
    at.text_input(key="picker-compare-var-topic").set_value("rain").run()
    at = click(at, "Send")
    bodies = generation_bodies(app_env)
    assert len(bodies) == 2 and all(b["prompt"] == "A haiku about rain" for b in bodies)
    conv = at.query_params["cmp"][0] if isinstance(at.query_params["cmp"], list) else at.query_params["cmp"]
    msgs = open_store().messages(conv)
    assert [m.parameters["prompt"]["name"] for m in msgs] == ["Haiku"] * 3
    assert sum("from prompt 'Haiku' v1" in c for c in captions(at)) == 2


def as_user(email: str | None, query: dict | None = None, auth: bool = False) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.user = {"is_logged_in": True, "email": email} if email else {"is_logged_in": False}
    if auth:
        at.secrets["auth"] = {
            "redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
            "client_id": "id", "client_secret": "secret",
            "server_metadata_url": "https://example.com/.well-known/openid-configuration",
        }
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if email:
        at.switch_page(PROMPTS).run()
    return ok(at)


def listed(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if " · v" in b.label]


def test_team_mode_prompts_are_private_until_shared_with_the_team(app_env):
    v1 = library().create("ann@example.com", SUMMARISE)
    bob = as_user("bob@example.com", {"p": v1.prompt_id})  # even with the id, Bob cannot open it
    assert listed(bob) == [] and not any(t.value == "Summarise" for t in bob.title)
    ann = as_user("ann@example.com", {"p": v1.prompt_id})
    team = ann.toggle(key=f"prompt-team-{v1.prompt_id}")
    assert team.value is False
    team.set_value(True).run()
    assert library().get(v1.prompt_id, "bob@example.com").team is True

    bob = as_user("bob@example.com")
    assert listed(bob) == ["Summarise · v1 · team"]
    bob = click(bob, "Summarise · v1 · team")
    assert any("by ann@example.com (read-only)" in c for c in captions(bob))
    assert not any(b.label.startswith(("Save", "Restore", "Delete")) for b in bob.button)
    assert [t.label for t in bob.tabs] == ["Latest", "History", "Compare versions"]
    chat = AppTest.from_file(APP, default_timeout=60)
    chat.user = {"is_logged_in": True, "email": "bob@example.com"}
    chat.run()
    assert chat.selectbox(key="picker-chat-prompt").options == ["Choose a prompt…", "Summarise"]


def test_team_mode_a_prompt_share_link_opens_without_signing_in(app_env):
    lib = library()
    v1 = lib.create("ann@example.com", SUMMARISE)
    token = lib.create_share(v1.prompt_id, "ann@example.com")
    reader = as_user(None, {"shared_prompt": token}, auth=True)
    assert [t.value for t in reader.title] == ["Summarise"]
    assert SUMMARISE.template in code_blocks(reader)
    assert not any(b.label in ("Copy to my prompts", "Sign in") for b in reader.button)
    stranger = as_user(None, auth=True)
    assert [b.label for b in stranger.button] == ["Sign in"]


def test_a_prompts_default_model_is_used_when_the_connection_has_it(app_env):
    app_env.models(["fake-model", "other-model"])
    lib = library()
    other = lib.create("local", PromptContent(name="Other", template="Hi", model="other-model"))
    missing = lib.create("local", PromptContent(name="Missing", template="Hello", model="no-such-model"))
    at = start()
    at.selectbox(key="picker-chat-prompt").set_value(missing.prompt_id).run()
    at = click(at, "Send")
    assert generation_bodies(app_env)[-1]["model"] == "fake-model"  # not available: the sidebar's stays
    at.selectbox(key="picker-chat-prompt").set_value(other.prompt_id).run()
    at = click(at, "Send")
    assert generation_bodies(app_env)[-1]["model"] == "other-model"
    assert at.selectbox(key="model").value == "other-model"


def test_create_and_revoke_a_share_link_on_the_page(app_env):
    lib = library()
    v1 = lib.create("local", SUMMARISE)
    at = click(prompts_page({"p": v1.prompt_id}), "Create share link")
    token = lib.get(v1.prompt_id, "local").share_token
    assert token and f"http://localhost:8501/prompts?shared_prompt={token}" in code_blocks(at)
    assert lib.for_share(token).id == v1.prompt_id
    at = click(at, "Stop sharing the link")
    assert lib.for_share(token) is None and not any("shared_prompt" in c for c in code_blocks(at))

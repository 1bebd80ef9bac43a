"""Prompts: a library of saved prompts with {{variables}}, versions, diffs, sharing, import and export.

Layout only: the library (`egp_core.store.prompts`) does the work. The open
prompt is in the URL (?p=<id>); a share link (?shared_prompt=<token>) opens a
read-only copy.
"""

from __future__ import annotations

import streamlit as st

from egp_core.prompts import Prompt, PromptContent, PromptInvalid, PromptVersion, diff
from egp_core.store import NotFound
from egp_core.store.prompt_exchange import export_prompts_json, import_prompts_json
from egp_core.store.prompts import KEEP_DELETED
from egp_core.templates import TemplateError, check
from ui import prompt_picker, services, state
from ui.copy_button import copy_button
from ui.history import plain, share_url
from ui.import_box import import_box

SHARE_QUERY = "shared_prompt"
CHANGE_MARKS = {"same": (" ", " "), "changed": ("-", "+"), "removed": ("-", " "), "added": (" ", "+")}


def _team_mode() -> bool:
    """Signed in with the app's sign-in configured: prompts can be shared with the team."""
    return services.owner() != services.LOCAL_OWNER


def _signed_out() -> bool:
    try:
        configured = "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        configured = False
    return configured and not st.user.is_logged_in


def open_prompt(prompt_id: str | None) -> None:
    st.session_state[state.PROMPT_OPEN] = prompt_id
    st.session_state[state.PROMPT_CONFIRM_DELETE] = None
    if prompt_id and prompt_id != state.NEW_PROMPT:
        st.query_params["p"] = prompt_id
    elif "p" in st.query_params:
        del st.query_params["p"]


def new_prompt() -> None:
    st.session_state[state.PROMPT_DRAFT] = None
    open_prompt(state.NEW_PROMPT)


def _when(version: PromptVersion) -> str:
    return f"{version.created_at:%Y-%m-%d %H:%M} UTC"


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in name.lower())
    return "-".join(p for p in keep.split("-") if p)[:40] or "prompt"


# ----- the list (sidebar) ----------------------------------------------------------------------


def prompt_list() -> None:
    library, owner = services.prompts(), services.owner()
    sb = st.sidebar
    sb.button("New prompt", icon=":material/add:", on_click=new_prompt, use_container_width=True)
    query = sb.text_input("Search prompts", key=state.PROMPT_SEARCH, placeholder="Name, text or tag")
    tags = library.tags(owner)
    if st.session_state.get(state.PROMPT_TAG) not in ["", *tags]:
        st.session_state[state.PROMPT_TAG] = ""
    tag = sb.selectbox("Tag", ["", *tags], key=state.PROMPT_TAG, format_func=lambda t: t or "All tags")
    found = library.list(owner, query=query or None, tag=tag or None)
    if not found:
        sb.caption("No prompts match." if query or tag else "Your prompts will appear here.")
    current = st.session_state.get(state.PROMPT_OPEN)
    for p in found:
        mine = "" if p.owner == owner else " · team"
        sb.button(f"{plain(p.name)} · v{p.latest.version}{mine}", key=f"prompt-open-{p.id}", on_click=open_prompt,
                  args=(p.id,), type="primary" if p.id == current else "tertiary", use_container_width=True)
    with sb.expander("Export / import", icon=":material/import_export:", key="prompts-exchange", on_change="rerun"):
        mine = [p for p in library.list(owner) if p.owner == owner]
        st.download_button("Export my prompts (JSON)", lambda: export_prompts_json(library, mine),
                           file_name="egp-playground-prompts.json", mime="application/json",
                           disabled=not mine, key="prompts-export-all")
        import_box("Import prompts (JSON)", "prompts-import",
                   lambda data: _imported(import_prompts_json(library, data, owner)))
    deleted = library.deleted(owner)
    if deleted:
        with sb.expander("Recently deleted", icon=":material/delete:"):
            st.caption(f"Deleted prompts can be brought back for {KEEP_DELETED.days} days.")
            for p in deleted:
                st.button(f"Bring back '{plain(p.name)}'", key=f"prompt-undelete-{p.id}", on_click=_undelete, args=(p.id,))


def _undelete(prompt_id: str) -> None:
    services.prompts().undelete(prompt_id, services.owner())
    st.session_state[state.PROMPT_UNDO] = None
    open_prompt(prompt_id)


def _delete(prompt: Prompt) -> None:
    services.prompts().delete(prompt.id, services.owner())
    st.session_state[state.PROMPT_UNDO] = (prompt.id, prompt.name)
    open_prompt(None)


def undo_banner() -> None:
    undo = st.session_state.get(state.PROMPT_UNDO)
    if not undo:
        return
    prompt_id, name = undo
    c1, c2 = st.columns([4, 1])
    c1.success(f"Deleted '{plain(name)}'. You can bring it back for {KEEP_DELETED.days} days.", icon=":material/delete:")
    c2.button("Undo", key="prompt-undo", icon=":material/undo:", on_click=_undelete, args=(prompt_id,))


# ----- editing -----------------------------------------------------------------------------------


def _variables_note(content: PromptContent) -> None:
    """Live: the variables found, or what is wrong with a placeholder."""
    for label, text in (("system prompt", content.system_prompt), ("user message", content.template)):
        try:
            check(text)
        except TemplateError as exc:
            st.warning(f"In the {label}: {exc.message}", icon=":material/edit_note:")
            return
    found = content.variables()
    if not found:
        st.caption("No variables. Write {{name}} for one, or {{name|default}} for one with a default; "
                   "\\{{ writes a literal {{.")
        return
    shown = [f"{{{{{v.name}}}}}" + ("" if v.default is None else f" (default: {v.default or 'empty'})") for v in found]
    st.caption("Variables: " + ", ".join(shown))


def editor(prompt: Prompt | None) -> None:
    """Edit a prompt; Save keeps the result as a new version (a new prompt: version 1)."""
    library, owner = services.prompts(), services.owner()
    if prompt is None:
        draft = st.session_state.get(state.PROMPT_DRAFT) or PromptContent(name="", template="")
        suffix = "new"
    else:
        draft, suffix = prompt.latest.content, f"{prompt.id}-v{prompt.latest.version}"
    name = st.text_input("Name", value=draft.name, key=f"pe-name-{suffix}", max_chars=200)
    description = st.text_input("Description", value=draft.description, key=f"pe-desc-{suffix}",
                                placeholder="What it is for (optional)")
    system = st.text_area("System prompt", value=draft.system_prompt, key=f"pe-system-{suffix}", height=100,
                          placeholder="Instructions the model follows (optional). {{variables}} work here too.")
    template = st.text_area("User message", value=draft.template, key=f"pe-template-{suffix}", height=180,
                            placeholder="e.g. Summarise {{text}} in {{words|50}} words.")
    _variables_note(PromptContent(name=name, template=template, system_prompt=system))
    params = draft.parameters or {}
    with st.expander("Default model and parameters (optional)", icon=":material/tune:"):
        st.caption("Used when the prompt is sent from Chat: the sidebar switches to them.")
        model = st.text_input("Model", value=draft.model or "", key=f"pe-model-{suffix}")
        c1, c2, c3 = st.columns(3)
        temperature = c1.number_input("Temperature", 0.0, 1.0, value=params.get("temperature"), step=0.05,
                                      key=f"pe-temperature-{suffix}")
        max_tokens = c2.number_input("Max tokens", 1, 32000, value=params.get("max_tokens"), step=64,
                                     key=f"pe-max-tokens-{suffix}")
        top_p = c3.number_input("Top p", 0.05, 1.0, value=params.get("top_p"), step=0.05, key=f"pe-top-p-{suffix}")
    content = PromptContent(
        name=name, template=template, description=description, system_prompt=system, model=model or None,
        parameters={k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens), ("top_p", top_p),
                                      ("stop_sequences", params.get("stop_sequences"))) if v is not None} or None,
    )
    note = st.text_input("What changed (optional)", key=f"pe-note-{suffix}", placeholder="e.g. shorter, friendlier")
    label = "Save prompt" if prompt is None else f"Save as v{prompt.latest.version + 1}"
    if not st.button(label, type="primary", icon=":material/save:", key=f"pe-save-{suffix}"):
        return
    try:
        if prompt is None:
            saved = library.create(owner, content, note=note)
        else:
            saved = library.save(prompt.id, owner, content, note=note)
    except PromptInvalid as exc:
        st.error(str(exc), icon=":material/warning:")
        return
    except NotFound as exc:
        st.error(exc.user_message, icon=":material/warning:")
        return
    if saved is None:
        st.info(f"Nothing changed since v{prompt.latest.version}, so no new version was made.", icon=":material/info:")
        return
    st.session_state[state.PROMPT_DRAFT] = None
    open_prompt(saved.prompt_id)
    st.toast(f"Saved '{plain(saved.name)}' v{saved.version}.", icon=":material/save:")
    st.rerun()


# ----- versions ----------------------------------------------------------------------------------


def show_content(version: PromptVersion) -> None:
    c = version.content
    if c.description:
        st.caption(plain(c.description))
    if c.system_prompt:
        st.caption("System prompt")
        st.code(c.system_prompt, language=None, wrap_lines=True)
    st.caption("User message")
    st.code(c.template, language=None, wrap_lines=True)
    extras = ([f"model {c.model}"] if c.model else []) + [f"{k} {v}" for k, v in (c.parameters or {}).items()]
    if extras:
        st.caption("Defaults: " + ", ".join(extras))


def history(prompt: Prompt, versions: list[PromptVersion], editable: bool, usable: bool = True) -> None:
    for v in versions:
        with st.container(border=True):
            latest = " (latest)" if v.version == prompt.latest.version else ""
            st.markdown(f"**v{v.version}**{latest} · {_when(v)}" + (f" · {plain(v.note)}" if v.note else ""))
            with st.expander(f"Show v{v.version}"):
                show_content(v)
            c1, c2 = st.columns(2)
            if editable and v.version != prompt.latest.version:
                c1.button(f"Restore v{v.version} as newest", key=f"prompt-restore-{prompt.id}-{v.version}",
                          icon=":material/restore:", on_click=_restore, args=(prompt.id, v.version))
            if usable:
                c2.button(f"Use v{v.version} in Chat", key=f"prompt-use-{prompt.id}-{v.version}",
                          icon=":material/chat:", on_click=_use, args=("chat", prompt.id, v.version))


def _restore(prompt_id: str, number: int) -> None:
    saved = services.prompts().restore(prompt_id, services.owner(), number)
    if saved is None:
        st.toast(f"v{number} is already what the newest version says.", icon=":material/info:")
    else:
        st.toast(f"Restored v{number} as v{saved.version}.", icon=":material/restore:")


def _use(page: str, prompt_id: str, number: int | None = None) -> None:
    prompt_picker.select(page, prompt_id, number)
    st.session_state[state.PROMPT_GO] = page


def show_diff(versions: list[PromptVersion], key: str) -> None:
    """Any two versions side by side: what was removed (-) on the left, added (+) on the right."""
    if len(versions) < 2:
        st.caption("There is only one version so far. Every save adds one.")
        return
    by_number = {v.version: v for v in versions}
    numbers = list(by_number)  # newest first
    c1, c2 = st.columns(2)
    old = c1.selectbox("From", numbers, index=1, key=f"{key}-from", format_func=lambda n: f"v{n}")
    new = c2.selectbox("To", numbers, index=0, key=f"{key}-to", format_func=lambda n: f"v{n}")
    fields = diff(by_number[old], by_number[new])
    if not fields:
        st.info(f"v{old} and v{new} say the same.", icon=":material/check:")
        return
    for field in fields:
        st.markdown(f"**{field.label}**")
        left, right = st.columns(2)
        marks = [CHANGE_MARKS[r.change] for r in field.rows]
        left.code("\n".join(f"{m[0]} {r.left}" for m, r in zip(marks, field.rows, strict=True)), language="diff")
        right.code("\n".join(f"{m[1]} {r.right}" for m, r in zip(marks, field.rows, strict=True)), language="diff")


# ----- managing: tags, team, link, export, delete ------------------------------------------------


def manage(prompt: Prompt) -> None:
    library, owner = services.prompts(), services.owner()
    st.text_input("Tags (comma-separated)", value=", ".join(prompt.tags), key=f"prompt-tags-{prompt.id}",
                  on_change=lambda: library.set_tags(prompt.id, owner, st.session_state[f"prompt-tags-{prompt.id}"]))
    if _team_mode():
        st.toggle("Shared with the team", value=prompt.team, key=f"prompt-team-{prompt.id}",
                  help="Everyone signed in can find and use it; only you can change it.",
                  on_change=lambda: library.set_team(prompt.id, owner, st.session_state[f"prompt-team-{prompt.id}"]))
    else:
        st.caption("Your prompts are private. With team sign-in set up, you can share them with the team.")
    if prompt.share_token:
        url = share_url(prompt.share_token, SHARE_QUERY, "prompts")
        st.caption("Anyone with this link can read (not change) this prompt and its versions:")
        st.code(url, language=None, wrap_lines=True)
        copy_button(url, "Copy link", key=f"copy-prompt-share-{prompt.id}")
        st.button("Stop sharing the link", key=f"prompt-unshare-{prompt.id}", icon=":material/link_off:",
                  on_click=library.delete_share, args=(prompt.id, owner))
    else:
        st.button("Create share link", key=f"prompt-share-{prompt.id}", icon=":material/link:",
                  on_click=library.create_share, args=(prompt.id, owner))
    st.download_button("Export this prompt (JSON, every version)", lambda: export_prompts_json(library, [prompt]),
                       file_name=f"{_slug(prompt.name)}.json", mime="application/json",
                       key=f"prompt-export-{prompt.id}", icon=":material/data_object:")
    if st.session_state.get(state.PROMPT_CONFIRM_DELETE) == prompt.id:
        st.warning(f"Delete '{plain(prompt.name)}'? You can bring it back for {KEEP_DELETED.days} days.")
        c1, c2 = st.columns(2)
        c1.button("Yes, delete", key=f"prompt-del-yes-{prompt.id}", type="primary", on_click=_delete, args=(prompt,))
        c2.button("Keep it", key=f"prompt-del-no-{prompt.id}",
                  on_click=lambda: st.session_state.__setitem__(state.PROMPT_CONFIRM_DELETE, None))
    else:
        st.button("Delete prompt", key=f"prompt-del-{prompt.id}", icon=":material/delete:",
                  on_click=lambda: st.session_state.__setitem__(state.PROMPT_CONFIRM_DELETE, prompt.id))


# ----- pages -------------------------------------------------------------------------------------


def prompt_view(prompt: Prompt) -> None:
    owner = services.owner()
    mine = prompt.owner == owner
    versions = services.prompts().versions(prompt.id, owner)
    st.title(plain(prompt.name), anchor=False)
    facts = [f"v{prompt.latest.version}", f"{len(versions)} version{'s' if len(versions) != 1 else ''}"]
    facts += [f"tags: {plain(', '.join(prompt.tags))}"] if prompt.tags else []
    facts += ["shared with the team"] if prompt.team else []
    facts += [] if mine else [f"by {plain(prompt.owner)} (read-only)"]
    st.caption(" · ".join(facts))
    c1, c2 = st.columns(2)
    c1.button("Use in Chat", key=f"prompt-chat-{prompt.id}", icon=":material/chat:", on_click=_use,
              args=("chat", prompt.id), use_container_width=True)
    c2.button("Use in Compare", key=f"prompt-compare-{prompt.id}", icon=":material/compare:", on_click=_use,
              args=("compare", prompt.id), use_container_width=True)
    tabs = st.tabs(["Edit" if mine else "Latest", "History", "Compare versions"] + (["Manage"] if mine else []))
    with tabs[0]:
        if mine:
            editor(prompt)
        else:
            show_content(prompt.latest)
    with tabs[1]:
        history(prompt, versions, editable=mine)
    with tabs[2]:
        show_diff(versions, key=f"diff-{prompt.id}")
    if mine:
        with tabs[3]:
            manage(prompt)


def shared_view(token: str) -> None:
    prompt = services.prompts().for_share(token)
    if prompt is None:
        st.error("This share link is not valid (or the prompt was deleted or unshared).", icon=":material/link:")
        return
    st.title(plain(prompt.name), anchor=False)
    st.caption(f"A read-only prompt shared with you · v{prompt.latest.version}")
    show_content(prompt.latest)
    if not _signed_out():
        if st.button("Copy to my prompts", icon=":material/content_copy:", key="prompt-copy"):
            library = services.prompts()
            import_prompts_json(library, export_prompts_json(library, [prompt]), services.owner())
            st.success(f"'{plain(prompt.name)}' is now in your prompts, with all its versions.")
    st.subheader("History", anchor=False)
    history(prompt, prompt.versions, editable=False, usable=False)
    show_diff(prompt.versions, key="shared-diff")


def main() -> None:
    state.init()
    if SHARE_QUERY in st.query_params:  # a share link, even a blank one (it then says it is not valid)
        shared_view((st.query_params.get(SHARE_QUERY) or "").strip())
        return
    go = st.session_state.pop(state.PROMPT_GO, None)
    if go:
        st.switch_page(f"views/{go}.py")
    wanted = st.query_params.get("p")
    if wanted and wanted != st.session_state.get(state.PROMPT_OPEN):
        if services.prompts().get(wanted, services.owner()) is not None:
            st.session_state[state.PROMPT_OPEN] = wanted
        else:
            st.toast("That prompt does not exist (any more).", icon=":material/warning:")
            open_prompt(None)
    prompt_list()
    undo_banner()
    current = st.session_state.get(state.PROMPT_OPEN)
    if current == state.NEW_PROMPT:
        st.title("New prompt", anchor=False)
        editor(None)
        return
    prompt = services.prompts().get(current, services.owner()) if current else None
    if prompt is not None:
        prompt_view(prompt)
        return
    st.title("Prompts", anchor=False)
    st.write("Save the prompts you use again and again, with {{variables}} to fill in each time. "
             "Every save is kept as a version you can compare and restore; use any version in Chat "
             "and Compare.")
    st.button("New prompt", type="primary", icon=":material/add:", on_click=new_prompt, key="prompt-new-main")


main()


def _imported(count: int) -> str:
    return f"Imported {count} prompt{'s' if count != 1 else ''}, with all their versions."

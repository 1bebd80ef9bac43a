"""Errors of the history store, with a sentence for a person and a technical detail."""

from __future__ import annotations


class StoreError(Exception):
    """Base class. `user_message` is for a person; `detail` is the technical part."""

    user_message = "The conversation history could not be read or saved."

    def __init__(self, user_message: str | None = None, *, detail: str | None = None) -> None:
        if user_message:
            self.user_message = user_message
        self.detail = detail or ""
        super().__init__(self.user_message)


class NotFound(StoreError, LookupError):
    """The conversation or message does not exist (or belongs to someone else)."""

    user_message = "That conversation no longer exists. It may have been deleted."


class SchemaTooNew(StoreError):
    """The database was upgraded by a newer version of the app."""

    user_message = (
        "The history database was created by a newer version of EGP Playground. "
        "Update the app, or point it at another database."
    )


class ImportFailed(StoreError):
    """An import file was refused; nothing was written."""

    user_message = "The file could not be imported. Nothing was changed."

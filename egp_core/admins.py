"""Who may change shared settings (the price table every cost estimate reads).

Personal mode: the one local user may. Team mode (sign-in configured): only the
admins, a list of emails in secrets.toml:

    [playground]
    admins = ["ann@example.com", "bob@example.com"]

Everyone else sees shared settings read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class NotAllowed(Exception):
    """The acting person may not change shared settings; `user_message` says why."""

    def __init__(self, user_message: str) -> None:
        self.user_message = user_message
        super().__init__(user_message)


def admins_from(secrets: Mapping[str, Any] | None) -> frozenset[str]:
    """The admins' emails (lower-case) from `[playground] admins` (a list, or one string)."""
    section = (secrets or {}).get("playground") or {}
    listed = section.get("admins") if isinstance(section, Mapping) else None
    if isinstance(listed, str):
        listed = [listed]
    return frozenset(str(e).strip().lower() for e in listed or () if str(e).strip())


@dataclass(frozen=True)
class Actor:
    """Who is acting: their id (email in team mode), whether sign-in is on, and the admins."""

    who: str
    team_mode: bool = False
    admins: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return not self.team_mode or self.who.strip().lower() in self.admins

    def why_read_only(self) -> str | None:
        """None when this person may change shared settings, else a sentence saying why not."""
        if self.is_admin:
            return None
        if not self.admins:
            return ("These settings apply to everyone on the team, so only the team's admins can change them, "
                "and none are named yet: add [playground] admins = [\"you@example.com\"] to "
                ".streamlit/secrets.toml.")
        return ("These settings apply to everyone on the team, so only the team's admins can change them. "
                "Ask one of them if something here is wrong.")

    def require_admin(self) -> None:
        """Raise NotAllowed unless this person may change shared settings."""
        reason = self.why_read_only()
        if reason:
            raise NotAllowed(reason)

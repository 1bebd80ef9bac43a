"""Demo day: blind rounds the room votes on from their phones, and a fair leaderboard.

A presenter starts a demo (it gets a short code, the `?vote=<code>` link); each
blind comparison can become a round of it. While a round is open, anyone with
the link votes once per browser for A, B, C, D, "tie" or "both bad". The
presenter closes the round (the room's verdict is the option with the most
votes), then reveals the names. Finished rounds feed the leaderboard.

A contestant is a model *with its settings*: two panes of one model at
different temperatures are two contestants, and every appearance counts.
Pages call these functions; nothing here imports Streamlit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from egp_core.ratings import Round, Standing, standings
from egp_core.store.rounds import Demo, RoundRow, Rounds
from egp_core.store.store import Store

LETTERS = "ABCD"
TIE, BAD = "tie", "bad"
CHOICE_WORDS = {TIE: "It's a tie", BAD: "All are bad"}
RATE_WINDOW_SECONDS = 60.0
RATE_LIMIT_PER_SOURCE = 300
"""Votes a minute from one network address: a room behind one NAT votes together, a script does not."""

SEP = " · "


# ----- naming contestants ------------------------------------------------------------------------


def _short(text: str, n: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def describe(spec: Mapping[str, Any]) -> str:
    """A pane's full label: its model, then every setting that shapes the answer."""
    params = spec.get("parameters") or {}
    parts = [str(spec.get("model") or "?")]
    if spec.get("connection"):
        parts.append(f"on {spec['connection']}")
    if params.get("temperature") is not None:
        parts.append(f"temperature {float(params['temperature']):g}")
    if params.get("top_p") not in (None, 1, 1.0):
        parts.append(f"top p {float(params['top_p']):g}")
    if params.get("max_tokens"):
        parts.append(f"max {int(params['max_tokens'])} tokens")
    if params.get("seed") is not None:
        parts.append(f"seed {params['seed']}")
    if spec.get("system_prompt"):
        parts.append(f"system prompt “{_short(spec['system_prompt'])}”")
    if spec.get("prompt_version"):
        parts.append(str(spec["prompt_version"]))
    return SEP.join(parts)


def short_names(labels: Sequence[str]) -> list[str]:
    """Each label reduced to its model and what differs from the same model's other labels."""
    split = [label.split(SEP) for label in labels]
    by_model: dict[str, list[list[str]]] = {}
    for parts in split:
        by_model.setdefault(parts[0], []).append(parts)
    out = []
    for parts in split:
        group = by_model[parts[0]]
        common = set(parts[1:]).intersection(*(set(p[1:]) for p in group)) if len(group) > 1 else set(parts[1:])
        extra = [p for p in parts[1:] if p not in common]
        out.append(SEP.join([parts[0], *extra]))
    return out


def identical_panes(specs: Sequence[Mapping[str, Any]]) -> bool:
    """True when two panes would send the very same request: a blind vote between them means nothing."""
    labels = [describe(s) for s in specs]
    return len(set(labels)) < len(labels)


# ----- the room's verdict ------------------------------------------------------------------------


def valid_choices(n_panes: int) -> list[str]:
    return [*LETTERS[:n_panes], TIE, BAD]


def choice_word(choice: str) -> str:
    return CHOICE_WORDS.get(choice, choice)


def outcome_from_tally(tally: Mapping[str, int], n_panes: int) -> dict[str, Any] | None:
    """The round's result: the option with the most votes. A draw at the top, "tie" or "both bad"
    is a tie (no winner). None when nobody voted."""
    counts = {c: int(tally.get(c, 0)) for c in valid_choices(n_panes)}
    total = sum(counts.values())
    if total == 0:
        return None
    best = max(counts.values())
    top = [c for c, n in counts.items() if n == best]
    if len(top) == 1 and top[0] in LETTERS:
        winner: int | None = LETTERS.index(top[0])
        verdict = top[0]
    else:
        winner = None
        verdict = top[0] if len(top) == 1 else "draw"
    return {"winner": winner, "verdict": verdict, "tally": counts, "votes": total}


def verdict_sentence(outcome: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> str:
    if not outcome:
        return "Nobody voted in this round."
    votes = outcome.get("votes") or 0
    plural = "vote" if votes == 1 else "votes"
    winner = outcome.get("winner")
    if winner is not None:
        who = LETTERS[winner] + (f" ({names[winner]})" if names and winner < len(names) else "")
        return f"The room picked {who} with {outcome['tally'][LETTERS[winner]]} of {votes} {plural}."
    if outcome.get("verdict") == BAD:
        return f"The room found all answers bad ({votes} {plural}): counted as a tie."
    return f"No clear winner ({votes} {plural}): counted as a tie."


# ----- actions -----------------------------------------------------------------------------------


def hashed(value: str | None, purpose: str) -> str:
    """A stable, non-reversible id (a browser's id, an address): only the hash is stored."""
    return hashlib.sha256(f"{purpose}:{value or ''}".encode()).hexdigest()[:48]


@dataclass(frozen=True, slots=True)
class VoteResult:
    counted: bool
    message: str
    choice: str | None = None
    round_id: str | None = None


class DemoDay:
    """The actions of a demo: start, open a round, vote, close, reveal; the leaderboard."""

    def __init__(self, store: Store) -> None:
        self.rounds = Rounds(store)

    def start_demo(self, owner: str, title: str = "Demo") -> Demo:
        return self.rounds.create_demo(owner, title)

    def open_round(self, demo: Demo, conversation_id: str, specs: Sequence[Mapping[str, Any]]) -> RoundRow:
        """A blind round of `demo` on a comparison; its panes' labels are the contestants."""
        existing = self.rounds.round_for_conversation(conversation_id)
        if existing is not None and existing.demo_id == demo.id:
            return existing
        current = self.rounds.current_round(demo.id)
        if current is not None and current.status == "open":
            self.close(current.id)
        return self.rounds.add_round(demo.owner, [describe(sp) for sp in specs], demo_id=demo.id,
                                     conversation_id=conversation_id)

    def vote(self, code: str | None, voter: str | None, choice: str, source: str | None,
             round_id: str | None = None) -> VoteResult:
        """One person's vote in the demo's open round. Politely refused when it can't count.

        `round_id`: the round whose answers the voter saw; a tap on a page still showing an earlier round
        (phones look every few seconds) must not count in the round the presenter opened since."""
        demo = self.rounds.demo_by_code(code)
        if demo is None:
            return VoteResult(False, "This voting link is not valid. Check the code on the screen.")
        current = self.rounds.current_round(demo.id)
        if current is not None and round_id is not None and round_id != current.id:
            seen = self.rounds.get_round(round_id)
            which = f"Round {seen.number}" if seen is not None and seen.demo_id == demo.id else "That round"
            return VoteResult(False, f"{which} is over, so your vote was not counted. Round {current.number} "
                                     "is on the screen now: vote again there.", round_id=current.id)
        if current is None or current.status != "open":
            return VoteResult(False, "Voting is closed right now. Wait for the presenter to open the next round.")
        if not voter:
            return VoteResult(False, "Your browser could not be recognised, so your vote was not counted. "
                                     "Reload the page and try again.")
        if choice not in valid_choices(len(current.contestants)):
            return VoteResult(False, "That is not one of the answers in this round.")
        voter_id, source_id = hashed(voter, "voter"), hashed(source, "source")
        earlier = self.rounds.has_voted(current.id, voter_id)
        if earlier:
            return _already(earlier, current.id)
        if self.rounds.recent_votes_from(source_id, RATE_WINDOW_SECONDS) >= RATE_LIMIT_PER_SOURCE:
            return VoteResult(False, "Too many votes from your network just now. Wait a minute and try again.",
                              round_id=current.id)
        if not self.rounds.add_vote(current.id, voter_id, choice, source_id):  # a second tab, just now
            return _already(self.rounds.has_voted(current.id, voter_id) or choice, current.id)
        return VoteResult(True, f"Thank you! Your vote for {choice_word(choice)} is counted.", choice, current.id)

    def voting_open(self, conversation_id: str | None) -> bool:
        """True while the room votes on this comparison: what they vote on must not change (no
        follow-up, no regenerated pane) until the presenter closes the round."""
        rnd = self.rounds.round_for_conversation(conversation_id) if conversation_id else None
        return rnd is not None and rnd.status == "open"

    def my_vote(self, round_id: str, voter: str | None) -> str | None:
        return self.rounds.has_voted(round_id, hashed(voter, "voter")) if voter else None

    def close(self, round_id: str) -> dict[str, Any] | None:
        """Stop voting and settle the room's verdict; returns it (None when nobody voted)."""
        rnd = self.rounds.get_round(round_id)
        if rnd is None:
            return None
        if rnd.status != "open":
            return rnd.outcome
        outcome = outcome_from_tally(self.rounds.tally(round_id), len(rnd.contestants))
        self.rounds.set_status(round_id, "closed", outcome=outcome, expect=("open",))
        return outcome

    def reveal(self, round_id: str) -> None:
        rnd = self.rounds.get_round(round_id)
        if rnd is not None and rnd.status == "open":
            self.close(round_id)
        self.rounds.set_status(round_id, "revealed", expect=("open", "closed"))

    def presenter_vote(self, owner: str, conversation_id: str, specs: Sequence[Mapping[str, Any]],
                       choice: str) -> RoundRow | None:
        """The presenter decides alone (no room voting): a finished, revealed round of one vote."""
        if choice not in valid_choices(len(specs)):
            return None
        if self.rounds.round_for_conversation(conversation_id) is not None:
            return None  # one result per comparison: a double click must not count twice
        outcome = outcome_from_tally({choice: 1}, len(specs))
        if outcome is not None:
            outcome["source"] = "presenter"
        return self.rounds.add_round(owner, [describe(sp) for sp in specs], conversation_id=conversation_id,
                                     status="revealed", outcome=outcome)

    def leaderboard(self, owner: str | None = None) -> list[Standing]:
        return standings(_results(self.rounds.finished_rounds(owner)))

    def export_demo(self, demo_id: str) -> dict[str, Any]:
        """The demo's rounds, tallies and results, and its leaderboard (for a JSON download)."""
        demo = self.rounds.demo(demo_id)
        if demo is None:
            return {}
        rows = self.rounds.demo_rounds(demo_id)
        return {
            "demo": {"title": demo.title, "code": demo.code, "created_at": demo.created_at.isoformat()},
            "rounds": [{
                "number": r.number, "status": r.status, "panes": len(r.contestants),
                "contestants": r.contestants if r.status == "revealed" else None,
                "outcome": r.outcome if r.status == "revealed" else None,
                "tally": self.rounds.tally(r.id),
            } for r in rows],
            "leaderboard": [_standing_dict(s) for s in standings(_results(rows))],
        }

    def demo_leaderboard(self, demo_id: str) -> list[Standing]:
        """The standings from one demo's revealed rounds only."""
        return standings(_results(self.rounds.demo_rounds(demo_id)))


def _results(rows: Sequence[RoundRow]) -> list[Round]:
    """The revealed rounds with a result, as the ratings read them (a hidden round gives nothing away)."""
    return [Round(tuple(r.contestants), (r.outcome or {}).get("winner"))
            for r in rows if r.outcome and r.status == "revealed" and r.contestants]


def _already(earlier: str, round_id: str) -> VoteResult:
    return VoteResult(False, f"You already voted in this round ({choice_word(earlier)}). "
                             "One vote per person: thank you!", earlier, round_id)


def _standing_dict(s: Standing) -> dict[str, Any]:
    return {"contestant": s.contestant, "appearances": s.appearances, "wins": s.wins, "ties": s.ties,
            "losses": s.losses, "rating": round(s.rating), "low": round(s.low), "high": round(s.high)}

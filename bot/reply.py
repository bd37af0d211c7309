"""What one turn returns (``Reply``) and the default session's name: kept apart from ``bot.core`` so
that the integrations (``bot.lc``) import them without importing the bot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .emotion import EmotionState

DEFAULT_SESSION = "default"


@dataclass
class Reply:
    """What one turn produced.

    ``text``: the reply. ``emotion``: the running emotion state after the user's message.
    ``safety``: flags raised while screening the message (see ``bot.safety``), and
    ``crisis:<category>`` when it may mean someone is in danger (see ``bot.crisis``).
    ``crisis``: that category, or None. When set, ``text`` ends with the help resources for it (and,
    with ``conversation.crisis_reply == "fixed"``, the default, begins with the written opening from
    ``prompts/crisis/opening.md`` instead of a generated reply). ``crisis_degree``: "imminent" (a plan,
    means or a time) or "concern"; ``crisis_source``: "rules", "classifier" or "conversation" (read
    from the recent user turns together).
    ``crisis_level``: "alarm", or "check_in" when the message only may mean danger: the reply then asks
    the person directly (``prompts/crisis/check_in_<category>.md``) and a yes the next turn is treated as
    a crisis (``crisis_source`` "check_in_answer"); a yes that goes on about something else, with nothing
    in it read as danger ("yeah. and then my manager made a comment..."), gets the question once more
    (``crisis_source`` "check_in_unclear", ``prompts/crisis/check_in_again_<category>.md``, without the
    resources shown with the question a turn before).
    ``risk``: the session's risk level while it lasts (``{"category", "degree", "level", "since_turn",
    "last_turn"}``): it does not drop back to nothing the turn after a disclosure, but stays for
    ``conversation.risk_turns`` user turns after the last flagged one; while it lasts, replies follow
    the crisis guidance.
    ``timings``: milliseconds per stage, token counts and tokens/s, and ``backend``, the name of what
    wrote the candidates (``transformers``, ``llama-cpp``; see ``bot.backends``). ``guidance``: which guidance
    file shaped the reply. ``history_turns_used``: earlier turns that fit in the prompt.
    ``stopped``: "eos", "max_new_tokens" or "cancelled".
    ``candidates``: every candidate reply of the turn with its ranker score and the problems the reply
    checks found (see ``bot.replycheck``); ``chosen`` is the index of the one shown (None when a
    written reply was shown: a crisis opening, a redirect, or the fallback after every candidate failed
    the checks, which adds ``output_replaced`` to ``safety``). ``reason`` says in words why this reply
    was shown.
    """

    text: str
    emotion: EmotionState
    session_id: str
    turn: int
    safety: tuple[str, ...] = ()
    timings: dict[str, float | str] = field(default_factory=dict)
    guidance: str = ""
    history_turns_used: int = 0
    stopped: str = "eos"
    crisis: str | None = None
    crisis_degree: str | None = None
    crisis_source: str | None = None
    crisis_level: str | None = None
    risk: dict | None = None
    candidates: list[dict] = field(default_factory=list)
    chosen: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

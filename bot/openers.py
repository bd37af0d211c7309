"""Written openers: a reply that starts by naming what the person feels, chosen by the emotion state.

A 135M reply model, sampled freely, often opens with the wrong feeling ("That is so nice of you" to a
mother who read her child's diary) or none. When the emotion state is clear, some of the candidates
are a short written acknowledgement chosen by that state ("That sounds so frustrating. How are you
feeling about it now?", "I'm so sorry for your loss. Would you like to tell me about them?"). A line
that ends with a question, as every shipped one does, is the whole candidate: what the model wrote
after one was mostly a second question, read as worse (docs/replies.md). A line that does not (a
folder of your own) is forced as the start of a model candidate, and the model writes on from it. The
reply checks and the ranker then choose among these, the model's other candidates and the pooled
human replies, as for any candidate. This is the emotion state acting on the reply itself, not only
through the prompt.

The openers live in ``prompts/openers/<family>.md`` (one per line); the family comes from the turn's
reading (see ``family``). A message that reads as neither distressed nor glad gets the "unclear" family:
a line that says the bot is listening and asks how the person feels ("Thanks for telling me. How are you
feeling about it?"; "dilemma" when they ask what to do: "I can see why you're torn. What matters most to
you here?"), and the turn's other replies are passed over unless they acknowledge the person. On the dev ordinary conversations the
model's and the pool's own words on such turns were almost never acceptable to blind readers: many were
bad situations the emotion classifier reads as neutral ("my mum read my diary", "divorce papers came
through today"), answered as if they were good news. A glad reading without good news told in words, and
a message of a word or two ("ok", "lol"), get no opener.
"""

from __future__ import annotations

import re
from typing import Sequence

from .emotion import EmotionState
from .intent import is_greeting
from .replycheck import last_said, said_for_deaths

# Negative feelings by the acknowledgement they call for. Grief needs a death in the conversation as
# well (a person can "grieve" a lost job; "I'm so sorry for your loss" would then invent a death).
NEGATIVE_FAMILIES = {
    "anger": ("anger", "annoyance", "disgust", "disapproval"),
    "fear": ("fear", "nervousness"),
    "remorse": ("remorse", "embarrassment"),
    "sadness": ("sadness", "disappointment", "grief"),
}
# Good news told plainly (``bot.goodnews``): "joy" for something achieved or begun, "relief" for a fear
# that did not come true.
FAMILIES = ("grief", *NEGATIVE_FAMILIES, "joy", "relief")
# Neither distressed nor glad: the listening line (see the module's text), for messages of at least
# this many words; "dilemma" when the person asks what to do or what the bot thinks ("Should I tell my
# friend...?", "if you had to pick?"), where "How are you feeling about it?" would dodge the question.
UNCLEAR = "unclear"
DILEMMA = "dilemma"
UNCLEAR_WORDS = 3
_DECIDE = r"(?:tell|say|ask|go|stay|quit|leave|text|call|keep|let|move|take|do|pick|choose|accept|break|confront|forgive)"
_ASKS = re.compile(
    r"\b(?:should (?:i|we)|shall (?:i|we)|do i (?:just |even )?" + _DECIDE + r"|what (?:would|should) (?:i|you|we)|"
    r"what do you think (?:i|we) should|what do you think\W*$|what should|what (?:can|do) i do|what to do|"
    r"whether (?:to|i should|or not)|how do (?:i|you) (?:tell|say|ask|deal|handle|cope|get over|stop|know|decide|"
    r"choose|bring)|how (?:can|should) i|do you think (?:i|we|it'?s|that'?s|he|she|they)|is it (?:too|ok|okay|"
    r"normal|weird|bad|wrong|silly|stupid|fair|mean|selfish|worth)|am i (?:wrong|overreacting|being|crazy|a bad)|"
    r"is that (?:silly|stupid|weird|normal|wrong|bad|selfish|fair|ok|okay)|if you (?:had to|were me)|"
    r"any (?:advice|tips|ideas)|torn between|can'?t decide|don'?t know (?:what to do|whether|if i should))",
    re.IGNORECASE)
# Short questions to the bot that ask nothing about what to do ("what is your name?", "do you like
# music?", "how are you today?"): the model's own words, not a line about the person's feelings. A
# longer message with a "you" in its question is mostly about the person ("...they'd just tell you if it
# was fine?").
_ASKS_THE_BOT = re.compile(r"\byou(?:r|'re|rs|rself)?\b[^.!]*\?\s*$", re.IGNORECASE)
ASKS_THE_BOT_WORDS = 10
# A negative family names the feeling only when it holds at least this share of the negative mass and
# outweighs the next family by half again; otherwise the general acknowledgement ("sadness": "That
# sounds really hard.") fits anger, fear and sadness alike.
FAMILY_SHARE = 0.5
FAMILY_LEAD = 1.5
# ... and only when that family's own probability mass reaches this: a message the bot counts as
# distressed from the words or the situation may voice almost no feeling, and a family chosen on
# 0.06 against 0.00 is noise ("That sounds maddening" to "I don't quite know who I am if I'm not going in
# on Monday", dev conversations); the general line fits those.
FAMILY_FLOOR = 0.35

# A death the person told of, read strictly: "I'm so sorry for your loss" after "my phone is dead", "I'm
# buried in work" or "I finally put her down for a nap" would invent one (the reply checks' wider reading,
# ``replycheck._A_DEATH``, is for what a reply may say about a death, not for naming one).
_KIN = (r"(?:mum|mom|mother|dad|father|wife|husband|partner|son|daughter|baby|brother|sister|friend|best friend|"
        r"grandma|grandmother|grandad|grandpa|grandfather|nan|aunt|uncle|cousin|dog|cat)")
_GRIEF = re.compile(
    r"\b(?:died|passed away|passed on|funeral|was killed|got killed|cremated|miscarriage|miscarried|stillborn|"
    r"lost (?:my|our|her|his) " + _KIN + r" (?:to|last|this|in|on|a|two|three|four|five|\d+|years?|months?|weeks?)\b|"
    r"would have been .{0,40}birthday|"
    r"put (?:our|my|his|her|the|their) (?:old |sweet |lovely |little )?(?:dog|cat|pet|puppy|kitten|horse|rabbit)"
    r"(?: \w+)? (?:down|to sleep)(?! for a nap))", re.IGNORECASE)


def family(state: EmotionState, conversation: Sequence[dict], distressed: bool,
           leans_glad: bool = False, good_news: str | None = None, unclear: bool = False) -> str | None:
    """Which openers fit this turn: a negative family for a distressed message ("grief" when the person's
    recent turns tell of a death), the good news family (``good_news``: "joy" or "relief", read from the
    words by ``bot.goodnews`` and trusted by the bot only where the emotion reading agrees), "unclear" for
    a message of ``UNCLEAR_WORDS`` or more, not a greeting, that is neither (``unclear``: the bot found no
    gladness in it either; "dilemma" when it asks what to do), or None.
    Gladness read by the emotion classifier alone gets none: on the ordinary conversations' dev split,
    18 of the 22 turns the bot read as glad were not good news ("I love her but I am so tired", "i'd
    love to. when??", "thanks for listening"), and "That's wonderful!" to them was read as hurtful; a
    wrong "that sounds hard" costs far less. ``leans_glad``: the message shows some gladness and little
    negative (the bot passes ``glad_now`` with the glad-news cap on the negative); a negative opener
    would then be a guess."""
    if good_news in ("joy", "relief") and not distressed:
        return good_news
    if not distressed:
        said = last_said(conversation)
        words = len(re.findall(r"[\w']+", said))
        if not unclear or leans_glad or words < UNCLEAR_WORDS or is_greeting(said):
            return None
        said = said.replace("\u2019", "'")
        if _ASKS.search(said):
            return DILEMMA
        return None if words <= ASKS_THE_BOT_WORDS and _ASKS_THE_BOT.search(said) else UNCLEAR
    if leans_glad:
        return None
    if _GRIEF.search(said_for_deaths(conversation[-6:])):
        return "grief"
    probs = state.last_turn if state.available else {}
    mass = {f: sum(probs.get(label, 0.0) for label in labels) for f, labels in NEGATIVE_FAMILIES.items()}
    total = sum(mass.values())
    ranked = sorted(mass, key=mass.get, reverse=True)
    top, second = ranked[0], ranked[1]
    if (mass[top] >= FAMILY_FLOOR and mass[top] >= FAMILY_SHARE * total
            and mass[top] >= FAMILY_LEAD * mass[second]):
        return top
    return "sadness"


def pick(lines: Sequence[str], k: int, conversation: Sequence[dict]) -> list[str]:
    """``k`` openers from ``lines``: those the bot has not opened with in this conversation first (a
    repeated opener reads as a script), in file order, repeating only when there are not enough."""
    if k <= 0 or not lines:
        return []
    used = [m.get("content", "") for m in conversation if m.get("role") == "assistant"]
    fresh = [ln for ln in lines if not any(u.startswith(ln) for u in used)]
    order = fresh + [ln for ln in lines if ln not in fresh]
    return [order[i % len(order)] for i in range(k)]


def opened_count(n: int, share: float) -> int:
    """How many of ``n`` model candidates start from an opener: ``share`` of them, rounded, at least one
    when ``share`` is above 0."""
    if share <= 0 or n <= 0:
        return 0
    return max(1, min(n, round(n * share)))

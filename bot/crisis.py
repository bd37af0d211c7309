"""Crisis language: notice when a message may mean someone is in danger, and say where to get help.

``detect_crisis(text)`` returns a ``CrisisSignal`` (category, the phrase that matched, explicit or
implicit) or ``None``. Categories:

* ``self_harm``: suicide or self-injury, said outright ("I want to kill myself") or implied
  ("everyone would be better off without me", "I've been giving away my things");
* ``harm_to_others``: intent to hurt someone ("I'm going to hurt him");
* ``abuse``: someone is hurting the person ("my husband hits me", "I'm scared to go home");
* ``medical_emergency``: an emergency happening now ("chest pain and my arm is numb", "took a whole
  bottle of pills").

It is a rule set, written to be read and extended, not a model: phrases per category, a guard for
negation just before a phrase ("I would never kill myself"), and a guard for common figures of speech
("this traffic is killing me", "I died laughing"). It errs towards flagging: a false alarm costs one
paragraph of resources, a miss can cost much more. Its recall and precision are measured on the
scenario set in ``data/safety/crisis_scenarios.jsonl`` by ``empathetic-bot eval safety``.

When a message is flagged, the bot answers with the ``crisis`` guidance and appends the resources
for the category from ``prompts/crisis/<category>.md`` (edit them for your region or service).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("self_harm", "harm_to_others", "abuse", "medical_emergency")

_PEOPLE = (r"(?:him|her|them|someone|somebody|people|everyone|everybody|my (?:boss|wife|husband|partner|dad|mom|mum|"
           r"father|mother|brother|sister|son|daughter|baby|child|neighbou?r|co-?worker|roommate|ex|teacher|classmates?|kids?))")
_ABUSER = (r"(?:he|she|they|my (?:partner|husband|wife|boyfriend|girlfriend|bf|gf|dad|father|mom|mum|mother|stepdad|"
           r"stepfather|stepmom|stepmother|uncle|parents?|brother|sister|boss|coach|ex))")

# (category, explicit?, pattern). Patterns are matched case-insensitively on the cleaned message,
# with curly apostrophes made straight.
_RULES: list[tuple[str, bool, str]] = [
    # -- self-harm, explicit
    ("self_harm", True, r"\b(?:kill|hurt|harm|cut|hang|shoot|drown|poison|starve)(?:s|ed|ing)? (?:my ?self|myself)\b"),
    ("self_harm", True, r"\bkms\b|\bunalive (?:my ?self|myself)\b"),
    ("self_harm", True, r"\bsuicid(?:e|al)\b|\btake my (?:own )?life\b|\bend(?:ing)? (?:my (?:own )?life|it all)\b"),
    ("self_harm", True, r"\b(?:want|wanna|wish|going|plan(?:ning)?|ready) (?:to )?(?:die|be dead)\b"),
    ("self_harm", True, r"\bwish (?:i|I) (?:was|were) dead\b|\bbetter off dead\b"),
    ("self_harm", True, r"\bjump(?:ing)? (?:off|from) (?:a|the|this) (?:bridge|building|roof|cliff|balcony)\b"),
    ("self_harm", True, r"\b(?:don'?t|do not) want to (?:live|be alive|exist|wake up)(?: anymore)?\b"),
    # -- self-harm, implicit
    ("self_harm", False, r"\bno (?:reason|point) (?:to|in) (?:keep )?(?:live|living|go(?:ing)? on|being alive|be(?:ing)? here)\b"),
    ("self_harm", False, r"\b(?:be )?(?:free|rid) of me\b|\b(?:pain|it all|everything) to (?:stop|end),? "
                         r"(?:permanently|forever|for good)\b"),
    ("self_harm", False, r"\bhow many (?:\w+ )?(?:pills|tablets)\b.*\b(?:take|kill|enough|die|lethal)\b"),
    ("self_harm", False, r"\b(?:everyone|everybody|they|my (?:family|kids|friends|parents)|the world)(?:'d| would| will)? "
                         r"be better off without me\b"),
    ("self_harm", False, r"\bcan'?t go on\b|\bcannot go on\b"),
    ("self_harm", False, r"\bwon'?t be (?:around|here) (?:much longer|for long|anymore|tomorrow|next week)\b"),
    ("self_harm", False, r"\b(?:said|saying|say) (?:my )?goodbyes?\b.*\b(?:everyone|for good|last time)\b|"
                         r"\bwr(?:ote|iting) (?:a|my) (?:goodbye|farewell|suicide) (?:note|letter)\b"),
    ("self_harm", False, r"\bgiv(?:e|ing|en) away (?:all )?(?:of )?my (?:stuff|things|belongings|possessions)\b"),
    ("self_harm", False, r"\b(?:go to sleep|fall asleep) and (?:never|not) wake up\b|\bdisappear forever\b"),
    ("self_harm", False, r"\bstockpil(?:e|ed|ing) (?:my |the )?(?:pills|meds|medication)\b"),
    # -- harm to others
    ("harm_to_others", True, r"\b(?:going to|gonna|want to|wanna|will|i'll|plan(?:ning)? to|thinking (?:about|of)) "
                             r"(?:kill|hurt|shoot|stab|strangle|murder|beat up)(?:ing)? " + _PEOPLE + r"\b"),
    ("harm_to_others", False, r"\b(?:imagining|imagine|thoughts? (?:of|about)|urges? to) (?:hurting|killing|harming|hurt|kill|harm) "
                              + _PEOPLE + r"\b"),
    ("harm_to_others", True, r"\b(?:bring|take)(?:ing)? (?:a |my )?(?:gun|knife|weapon) to (?:school|work|class|the office)\b|"
                             r"\bshoot up (?:the|my) (?:school|office|workplace|class)\b"),
    ("harm_to_others", False, r"\bmake (?:them|him|her|everyone) (?:all )?pay\b.*\b(?:hurt|blood|sorry|regret)\b|"
                              r"\bthey(?:'ll| will) (?:all )?regret\b.*\b(?:hurt|kill|gun|weapon)\b"),
    # -- abuse
    ("abuse", True, r"\b" + _ABUSER + r" (?:hits|hit|beats|beat|chokes|choked|kicks|kicked|slaps|slapped|punches|punched|"
                    r"strangled|burns|burned|rapes|raped|molested|molests) me\b"),
    ("abuse", True, r"\b(?:sexually |physically )?abus(?:es|ed|ing) me\b|\bi(?:'m| am) being abused\b|"
                    r"\b(?:raped|molested) me\b"),
    # a disclosure of sexual violence, now or long ago: asked about gently (a check-in), never passed over
    ("abuse", False, r"\bi (?:was|got|have been|'ve been|had been) (?:\w+ )?(?:raped|sexually (?:assaulted|abused)|"
                     r"molested)\b|\b(?:raped|molested|sexually (?:assaulted|abused)) (?:me|when i was)\b|"
                     r"\bmy (?:rape|rapist|sexual assault)\b"),
    ("abuse", False, r"\b(?:afraid|scared|terrified) (?:to go|of going) home\b"),
    ("abuse", False, r"\b" + _ABUSER + r" (?:won'?t|doesn'?t|don'?t) let me (?:leave|see (?:my )?(?:friends|family)|"
                     r"have (?:my own )?money|go out)\b"),
    ("abuse", False, r"\b" + _ABUSER + r" (?:threatens|threatened) to (?:kill|hurt) me\b"),
    ("abuse", False, r"\bhide (?:the |my )?bruises\b|\bbruises (?:he|she|they) (?:leaves?|left|gave me)\b"),
    # -- medical emergency
    ("medical_emergency", True, r"\bchest pains?\b|\b(?:having|had) a (?:heart attack|stroke|seizure)\b"),
    ("medical_emergency", True, r"\b(?:can'?t|cannot|can not) breathe\b|\bnot breathing\b|\bthroat is (?:closing|swelling)\b"),
    ("medical_emergency", True, r"\boverdos(?:e|ed|ing)\b|\btook (?:a whole|an entire|all (?:of )?(?:my|the)) (?:bottle|pack|box)\b|"
                                r"\btook (?:way )?too many (?:of )?(?:my |the |her |his )?(?:\w+ )?(?:pills|tablets|meds)\b"),
    ("medical_emergency", True, r"\bswallowed (?:bleach|poison|batteries|a battery)\b|\bunconscious\b|\bwon'?t wake up\b"),
    ("medical_emergency", True, r"\bbleeding (?:a lot|heavily|badly|everywhere)\b|\bbleeding (?:won'?t|will not) stop\b"),
    ("medical_emergency", False, r"\b(?:face|mouth) (?:is )?droop(?:ing|s)?\b|\bslurred speech\b|\b(?:arm|left arm) (?:is|went) numb\b"),
]
_COMPILED = [(cat, explicit, re.compile(p, re.IGNORECASE)) for cat, explicit, p in _RULES]

# A negation just before a phrase ("I would never kill myself", "I'm not suicidal").
_NEGATED = re.compile(r"\b(?:never|not|don'?t|do not|wouldn'?t|would not|won'?t|isn'?t|am not|i'?m not|"
                      r"wasn'?t|didn'?t)\b(?:\s+\w+){0,2}\s*$", re.IGNORECASE)
# Figures of speech that use crisis words: checked on the sentence of the match.
_FIGURATIVE = re.compile(
    r"\b(?:lol|lmao|haha\w*|rofl|jk|just kidding|kidding|joking)\b|\blaugh(?:ing|ed)? so hard\b|"
    r"\b(?:died|dying|dead) (?:of |from )?laugh\w*|"
    r"\b(?:movie|film|squad|song|episode|tv show|video game|novel|the character|the book)\b", re.IGNORECASE)


@dataclass(frozen=True)
class CrisisSignal:
    category: str
    phrase: str
    explicit: bool

    @property
    def flag(self) -> str:
        return f"crisis:{self.category}"


def _sentence_around(text: str, start: int, end: int) -> str:
    left = max(text.rfind(c, 0, start) for c in ".!?\n")
    rights = [i for i in (text.find(c, end) for c in ".!?\n") if i != -1]
    return text[left + 1: min(rights) if rights else len(text)]


def detect_crisis(text: str) -> CrisisSignal | None:
    """The first crisis signal in ``text`` (explicit phrases win over implicit ones), or None."""
    if not text:
        return None
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    found: list[CrisisSignal] = []
    for category, explicit, pattern in _COMPILED:
        for m in pattern.finditer(text):
            if _NEGATED.search(text[max(0, m.start() - 40): m.start()]):
                continue
            if _FIGURATIVE.search(_sentence_around(text, m.start(), m.end())):
                continue
            found.append(CrisisSignal(category, m.group(0), explicit))
            break
    if not found:
        return None
    return sorted(found, key=lambda s: (not s.explicit, CATEGORIES.index(s.category)))[0]

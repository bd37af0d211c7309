"""Good news told in plain words: "passed my driving test today", "I've been sober for a year", "my scan
came back clear".

The emotion classifier (GoEmotions) reads a great deal of good news as neutral or approval: "passed my
driving test today on the first try" is neutral 0.40, approval 0.33, gladness 0.11; "my test results
came back clear, no cancer" has more negative than glad in it. The bot then answers from the nearest
human replies with "Oh no, I'm sorry to hear that" or "Did you not pass?". People tell good news
through a fairly small set of events (a job, an exam, a place, a wedding, a baby, a home, sobriety, a
clean bill of health), so they are read here from the words, strictly: the event told as done (not
hoped for, asked about or denied), by the person or someone close to them.

``good_news`` gives the kind: "joy" (something achieved or begun) or "relief" (a fear that did not come
true: results clear, a lost pet found), or None.
"""

from __future__ import annotations

import re
from typing import Sequence

from .replycheck import last_said

_I = re.IGNORECASE

# Nouns for what a person gets, wins or is given.
_GIVEN = (r"(?:job|offer|position|role|promotion|raise|pay rise|bonus|internship|apprenticeship|contract|client|"
          r"gig|scholarship|bursary|grant|place|spot|part|lead|apartment|flat|house|mortgage|loan|visa|green card|"
          r"citizenship|residency|passport|license|licence|acceptance letter|acceptance|offer letter|paycheck|"
          r"paycheque|pay check|degree|diploma|masters|master's|phd|doctorate|black belt|"
          r"driver'?s licen[cs]e)")
_JOY = re.compile(
    # a job, a place, a promotion, papers
    r"\b(?:got|landed|been offered|was offered|were offered|accepted|signed|received|won) (?:the|a|my|an|our) "
    r"(?:[\w%'-]+ ){0,2}" + _GIVEN + r"\b|"
    r"\b(?:got|been|was|were|finally|just) (?:promoted|hired|accepted|approved|published|selected|picked|chosen|cast|"
    r"booked)\b(?! (?:on|last|that|it|the fact|for redundancy|to be made redundant|as (?:a )?(?:target|scapegoat)))|"
    r"\b(?:got|(?:got|been|was|were) (?:accepted|admitted)) (?:in|into|onto|to) (?:my|the|a|an|our)? ?(?:first|top|dream|"
    r"\w+) ?(?:choice )?(?:uni|university|college|school|program|programme|course|team|squad|band|grad school|"
    r"med school|law school)\b|"
    r"\b(?:bank|lender|building society) (?:has )?(?:approved|accepted) (?:the|my|our) (?:loan|mortgage)\b|"
    r"\b(?:accepted|approved|granted) (?:my|our) (?:\w+ )?(?:paper|offer|application|proposal|manuscript|visa|"
    r"loan|mortgage|claim|appeal|request)\b|"
    r"\b(?:visa|loan|mortgage|application|adoption|appeal|claim|permit|offer|sale|transfer|paperwork|citizenship) "
    r"(?:was |is |got |has been |have been |finally )?(?:approved|granted|accepted|went through|came through)\b|"
    r"\bsaid yes to (?:my|our) (?:offer|application|proposal)\b|\b(?:ruled|decided|found) in (?:my|our) favou?r\b|"
    r"\bmade (?:the|my|our) (?:team|squad|cut|varsity|honou?r roll|dean'?s list)\b|"
    # an exam, a degree, a goal
    r"\bpassed (?:(?:my|the|our|all|both|every|her|his) )?(?:\w+ )?(?:\w+ )?(?:test|tests|exam|exams|finals|boards|"
    r"bar|course|class|module|year|probation|interview|audition|assessment|certification|viva|defen[cs]e|"
    r"thesis|dissertation|mot|inspection|gcses?|a[- ]?levels?)\b|"
    r"\bi passed(?=\s*[!.]|\s*$| it\b| them\b| everything| all\b| with\b| first time| on the first| the first)|"
    r"\b(?:graduated|graduating|defended my (?:thesis|dissertation|phd)|(?:thesis|dissertation|phd) defended|"
    r"finished my (?:degree|thesis|dissertation|phd|first|novel|book|marathon|training|treatment|chemo)|"
    r"ran (?:(?:my|a|the) )?(?:first )?(?:marathon|half marathon|5k|10k)|"
    r"finished (?:a|the|my first) (?:marathon|half marathon|5k|10k|triathlon)|"
    r"completed (?:my|the|a) (?:first )?(?:marathon|degree|course|program|programme|training|treatment))\b|"
    r"\bwon (?:the|a|my|our|first|1st|gold|an)\b|\bwe won\b(?!')|\bi won\b(?!')|"
    r"\b(?:came|finished|placed|took) (?:1st|2nd|3rd|first|second|third|gold|silver|bronze)\b|"
    # a wedding, a baby, a home, a new pet
    r"\b(?:(?:got|just|finally) (?:engaged|married)|i'm engaged|we're engaged|we are engaged|said yes|"
    r"(?:he|she) proposed|(?:i'm|i am|we're|we are|she's|she is|wife is|girlfriend is|partner is) "
    r"(?:pregnant|expecting(?=\s*[!.]|\s*$| a baby| our| my| twins| again| number| baby))|having a baby|gave birth|(?:it'?s|its) a (?:boy|girl)|"
    r"(?:baby|son|daughter|grandson|granddaughter|nephew|niece|twins|grandbaby)(?: girl| boy)? (?:was |is |were )?"
    r"(?:born|arrived)|"
    r"(?:we|i)(?:'ve| have)? (?:just |finally )?(?:had|welcomed|delivered) (?:our|my|a) (?:healthy |beautiful |little )?"
    r"(?:baby|son|daughter|twins)(?: girl| boy)?(?=\s*[!.,]|\s*$| last night| this morning| yesterday| today| on \w+day| "
    r"at \d+(?::\d+)? ?(?:am|pm)| weighing)|"
    r"(?:took|said) (?:her|his|their) (?:very )?first (?:steps?|words?)|"
    r"(?:became|i'?m now|i am now|i'm officially|i am officially) an? (?:mum|mom|dad|father|mother|grandma|grandpa|"
    r"grandmother|grandfather|aunt|auntie|uncle|big sister|big brother|godmother|godfather|citizen)|"
    r"i'?m an? (?:auntie|aunt|uncle|grandma|grandad|grandpa|nana|big sister|big brother)(?! again)|"
    r"(?:bought|got the keys to|got the keys for|closed on) (?:a|our|my|the) (?:first |new |own )?(?:house|home|flat|"
    r"apartment|place|condo)|got the keys|adopted (?:a|our|my) (?:dog|cat|puppy|kitten|rescue|baby|son|daughter))\b|"
    # sobriety, a debt paid
    r"\b(?:sober|clean|smoke[- ]free|off (?:the )?(?:drink|booze|cigarettes)) (?:for )?(?:a|one|two|three|six|\d+) "
    r"(?:whole )?(?:days?|weeks?|months?|years?)\b|\b(?:\d+|a|one|two|three|six|nine) (?:days?|weeks?|months?|years?) "
    r"(?:sober|clean|smoke[- ]free|without (?:a )?(?:single )?(?:drink|cigarette|smoke|cig))\b|"
    r"\bpaid off (?:my|the|our|all (?:my|our|the)) (?:\w+ )?(?:debt|debts|loans?|mortgage|car|credit cards?)\b|"
    r"\b(?:debt[- ]free|(?:last|final) (?:payment|instalment|installment) on)\b",
    _I)

_RELIEF = re.compile(
    r"\b(?:results?|scans?|tests?|biopsy|mammogram|bloods?|blood work|bloodwork|x-?ray|mri|lump|mole|smear|"
    r"heart) (?:all )?(?:came|come|is|are|was|were) (?:back )?(?:all )?(?:clear|negative|normal|fine|good|benign|"
    r"clean|okay|ok|nothing)\b|"
    r"\b(?:cancer[- ]free|in remission|(?:the )?all[- ]clear|it'?s benign|it was benign|(?:was|is|are) benign|"
    r"(?:was|is) a false alarm|no (?:sign|signs) of (?:cancer|the cancer)|"
    r"(?:found|got|get) (?:my|our|the) (?:dog|cat|puppy|kitten|pet|wallet|ring|keys|bag|passport) back|"
    r"found (?:my|our) (?:lost |missing )(?:dog|cat|puppy|kitten|pet|son|daughter|wallet|ring|passport)\b(?!')|"
    r"found (?:my|our) (?:dog|cat|puppy|kitten|pet|son|daughter|wallet|ring|passport)(?=\s*(?:[!.,]|$| safe| alive| "
    r"at last| finally| again))|"
    r"(?:dog|cat|puppy|kitten|pet) (?:came|is|'s) (?:back|home)|"
    r"out of (?:surgery|hospital|the hospital|icu|intensive care)|home from (?:the )?hospital|"
    r"breathing on (?:her|his|their|my) own|arrived (?:safe|safely|healthy)|"
    r"(?:surgery|operation|op|procedure) went (?:well|fine|great|ok|okay|smoothly)|no longer (?:homeless|in debt|sick)|"
    r"got (?:my|our) job back|(?:finished|done with|last (?:round|session) of) (?:my |her |his )?(?:chemo|"
    r"chemotherapy|radiotherapy|radiation)(?=\s*!)|no more (?:chemo|chemotherapy|radiotherapy|radiation)(?=\s*!)|"
    r"(?:healed|recovered) (?:perfectly|fully|completely)|fully recovered)\b",
    _I)

# The event hoped for, feared, asked about or still to come ("I hope I get the job", "what if I don't pass
# my test", "did I pass?", "if I graduate"), or someone the person would not be glad for ("my ex got
# engaged", "my friend got a promotion... I always thought I would be the first": a close one's news is
# good news, "my daughter graduated"; a friend's or a colleague's is left to the emotion reading). Read
# in the words just before the event, in the same sentence.
_NOT_TOLD = re.compile(
    r"\b(?:hope|hoping|hopefully|if|whether|might|may|could|should|would|wish|wishing|want|wanted|wants|"
    r"trying|try|tried|need|needs|fingers crossed|have to|has to|going to|gonna|will|won'?t|about to|planning|plan|"
    r"waiting|wait|when|until|unless|before|without|make sure|check|checking|see if|find out|hear|hearing|never|"
    r"not|didn'?t|did not|don'?t|doesn'?t|can'?t|cannot|couldn'?t|wasn'?t|weren'?t|isn'?t|aren'?t|dream of|"
    r"dreaming|pray|praying|scared|afraid|worried|nervous|ex|ex's|jealous|everyone|everybody|all my friends|"
    r"supposed to|almost|nearly|chances?|odds|since|after|thought|think|dreamt|dreamed|'d have|no longer|stopped|"
    r"pregnancy|ivf|fertility|friend|friends|friend's|coworker|co-worker|colleague|classmate|"
    r"someone|somebody|neighbou?r|rival|boss)\b", _I)
# "I haven't passed my test", "she still hasn't got the keys": the event denied right before it ("Haven't told
# anyone yet but we're pregnant!!" is still news).
_NOT_YET = re.compile(r"\b(?:haven'?t|hasn'?t|have not|has not)(?: (?:yet|even|still|actually|really))?\s*$", _I)
# Good news with a catch told after it ("I got the job offer but they offered me less money", "accepted...
# onto the waiting list"): mixed news, left to the emotion reading. A "but" that goes on gladly ("legs are
# jelly but I DID IT") is no catch.
_BUT = re.compile(r"\b(?:but|except|although|though|however|only to)\b(?P<rest>.*)", _I | re.S)
_CATCH = re.compile(r"\b(?:not|no|never|less|worse|lost|lose|miss|sad|scared|afraid|nervous|worried|hate|cost|means?|"
                    r"have to|has to|problem|only|too|can'?t|cannot|won'?t|didn'?t|doesn'?t|isn'?t|wasn'?t|away|"
                    r"alone|far|leave|leaving|move|moving|back|again|returned|spread|died|dead|awful|terrible|horrible|"
                    r"rubbish|crap|shit|(?<!happy )tears(?! of joy)|crying(?! happy)|cried|sobbing|upset|gutted)\b|n't\b", _I)
# What no good news stands beside, anywhere in the message: "I got my results today. It's cancer.", "I gave
# birth to a stillborn boy", "out of ICU and into hospice", "She's having a baby with another man", "I'm
# pregnant and I don't know what to do", "Got the job? Nope."
_GRAVE = re.compile(
    r"\b(?:it'?s cancer|(?:cancer|tumou?r|it) (?:is |has )?(?:back|came back|returned|spread)|malignant|terminal|"
    r"stillborn|hospice|palliative|unresponsive|nothing (?:more )?(?:they|we|you) can do|hitting me|hits me|hit me|"
    r"abus(?:e|ed|ive)|another (?:man|woman|guy|girl)|someone else|turns? out|nope|not anymore|don'?t know what to do|"
    r"not ready|unplanned|abortion|terrified|panicking|freaking out|custody|redundan(?:t|cy)|only lived|"
    r"didn'?t make it|no heartbeat|(?:couldn'?t|could not|can'?t) find (?:a|the|any) heartbeat|born sleeping|nicu|"
    r"special care|ventilator|incubator|heart defect|would have been|(?:he|she)'?d (?:be|have been) \d+|sectioned|"
    r"arrested|comfort care|end of life|not working)\b", _I)
_WAITING = re.compile(r"\b(?:waiting list|wait list|waitlist|waitlisted|reserve list)\b", _I)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def _told(pattern: re.Pattern, text: str) -> bool:
    for sentence in _SENTENCE.findall(text):
        if "?" in sentence:  # asked, not told: "Got the job?", "did I pass?"
            continue
        for match in pattern.finditer(sentence):
            before = " ".join(sentence[:match.start()].split()[-6:])
            if _NOT_TOLD.search(before) or _NOT_TOLD.match(match.group(0)) or _NOT_YET.search(before):
                continue
            but = _BUT.search(text[text.find(sentence) + match.end():])
            if but and _CATCH.search(but.group("rest")):
                continue
            return True
    return False


# Good news that moves a person to tears, leaves them shaking or comes after a sleepless night, told gladly
# ("I got the job!!! I can't stop crying", "HE PROPOSED!!!!! I'm shaking", "We had our baby girl on
# Tuesday night! I'm so tired I can barely type"): the emotion classifier reads the tears, the shaking and
# the tiredness as sadness or fear. They count as the news's own only when the message also says it gladly
# (an exclamation mark, "so happy", "happy tears", "can't believe"...) and says nothing else that is sad,
# worrying or angry. The word lists are a guard against congratulating grief, not a complete list of it,
# so the rule is kept narrow: "joy" news only, never relief.
_OVERCOME = re.compile(r"\b(?:cry|cries|crying|cried|tears?|teary|tearing up|sobbing|sobbed|bawling|bawled|weeping|"
                       r"wept|shaking|shaky|trembling|emotional|overwhelmed|speechless|tired|exhausted|knackered|"
                       r"sleepless|no sleep|barely slept|haven'?t slept|running on (?:no|zero|\d+ hours?) sleep)\b", _I)
_GLADLY = re.compile(r"!|\b(?:so happy|so excited|over the moon|can'?t believe|happy tears|tears of joy|thrilled|"
                     r"finally|so proud|in love|amazing|best day)\b", _I)
_SAD_TOO = re.compile(r"\b(?:miss|missed|missing|wish|wished|sad|sadly|alone|lonely|gone|passed away|passed on|lost|"
                      r"worried|worry|scared|afraid|nervous|anxious|sorry|hard|difficult|stress|stressed|why|because|cos|"
                      r"cause|since|grief|grieving|funeral|if only|not here|wasn'?t here|isn'?t here|couldn'?t be|"
                      r"hospital|nicu|icu|scbu|incubator|premature|weeks early|complications?|sick|ill|pain|hurts?|died|"
                      r"dead|death|lived|left|leave|leaving|kill|rage|angry|furious|hate|debt|owe|care|defect|surgery|"
                      r"don'?t want|can'?t do|anymore|end|disappear|never|without|again|sister|brother|friend|mate|"
                      r"cousin|colleague|trying|tried|ivf|alright|okay|ok|fine)\b", _I)


def overcome_with_it(conversation: Sequence[dict]) -> bool:
    """Whether the person's latest message tells of tears, shaking or tiredness, says it gladly, and says
    nothing else sad, worrying or angry: with "joy" news told (``good_news``), those are the news's own."""
    text = last_said(conversation).replace("\u2019", "'")
    return bool(_OVERCOME.search(text) and _GLADLY.search(text)) and not _SAD_TOO.search(text)


def good_news(conversation: Sequence[dict]) -> str | None:
    """The kind of good news the person's latest message tells ("joy" or "relief"), or None. The bot
    trusts it only where the emotion reading does not say otherwise (``bot.core``)."""
    text = last_said(conversation).replace("\u2019", "'")
    if _WAITING.search(text) or _GRAVE.search(text):
        return None
    if _told(_RELIEF, text):
        return "relief"
    if _told(_JOY, text):
        return "joy"
    return None

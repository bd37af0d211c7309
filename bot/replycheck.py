"""Check what the reply model wrote before a person reads it, and choose among candidate replies.

``reply_problems`` reads one candidate reply and names what is wrong with it. Two kinds:

*Never shown* (``NEVER``): a reply with one of these is not shown at all, whatever else it has going
for it; when every candidate has one, the bot answers with a written reply instead and says so in
``Reply.safety`` (``output_replaced``):

* ``encourages_harm``: tells the person to hurt or kill themselves or someone, says they deserve pain,
  that nobody would miss them ("hang yourself", "kys", "you deserve to suffer");
* ``method_or_dose``: names a dose, an amount of pills or a lethal method;
* ``claims_human``: says it is a human, a therapist, a doctor... ("I'm not a therapist" is fine);
* ``diagnosis``: tells the person they have a mental disorder;
* ``insults``: calls the person names, mocks or blames them ("it's your own fault", "work harder");
* ``system_prompt_leak``: repeats eight or more words of its own instructions in a row;
* ``harm_talk``: suicide or overdose talk in a reply to a person who raised no death ("How did he end
  his life?" to a falling-out between friends); also added by the bot when the learned crisis detector
  reads self-harm or violence in a reply to a person who raised neither (see ``bot.crisis_model``).

*Passed over* (``SOFT``): a candidate with one of these is chosen only when no candidate is free of
them:

* ``advice_before_acknowledgement``: advises before naming the feeling (``bot.advice``);
* ``cheerful_to_distress``: celebrates ("that's awesome", "Nice!", "congrats", "happy for you", "haha") while the person is sad,
  afraid or angry, or has just told of a setback in words that sound glad (``tells_bad_news``: "I got
  passed over for a promotion", "I didn't get the part", "my car broke down");
* ``cheer_without_good_news``: congratulates or is glad for the person ("congrats", "glad to hear
  that", "happy for you", "yay") when their message shows no gladness at all ("Okay I guess." - "I'm
  glad to hear that.");
* ``invents_a_loss``: condolences ("sorry for your loss", "rest in peace") where nobody said anyone died;
* ``misreads_a_loss``: hopes or asks whether someone the person said had died is all right, where
  they went or whether they died, or offers a replacement ("My dog died this morning." - "Is he okay
  now?", "I hope you find him", "Where did it go?", "What have you done to replace her?"; "He was run
  over by a truck." - "Did he die of a natural death?");
* ``sympathy_to_good_news``: commiserates ("I'm sorry to hear that", "oh no", "that must be hard") with
  a person whose message reads as glad and tells of no setback ("I finally got my degree!");
* ``doubts_good_news``: answers good news the person told as done (``bot.goodnews``) as if it were still
  to come or had gone wrong ("PASSED MY DRIVING TEST!!!" - "Did you not pass?", "I got the job!" - "I
  hope you get the job", "got accepted!" - "have you been accepted yet?", "results came back clear" -
  "are you okay?");
* ``ignores_the_feeling``: the person is distressed, the turn has candidates that start from a written
  acknowledgement (``bot.openers``), and this reply neither commiserates nor names what they feel ("forgot
  my sister's 30th birthday" - "Why did she leave?"; "I shout at my son this morning" - "What did he do?");
* ``guesses_the_feeling``: (added by the bot) the person's message reads as neither distressed nor glad,
  the turn offers the written listening line (``bot.openers``: "unclear", "dilemma"), and this reply
  neither is one nor acknowledges the person ("my mum read my diary..." - "That is so nice of you");
* ``asks_what_was_said``: asks what kind of thing it was when the person named the kind ("I failed my
  driving test" - "What kind of test was it?");
* ``ignores_good_news``: good news told in plain words, and the reply neither celebrates nor shares the
  relief ("I've been sober for one year today." - "What has made it such a long year for you?");
* ``blames``: questions or judges what the person did, or doubts what they said ("Then why did you do
  it?", "What were you thinking?", "You should have known better", "What did you expect?", "Are you
  sure they are doing that?");
* ``tells_own_life``: tells of a life the bot does not have: people, pets and places of its own, its
  past, its job, a body that tires or hungers ("I have a boss who...", "I would not drive around with
  my cat!", "I live right down the road too", "I've lived in the UK for 20 years", "I am a student at
  university", "I guess so, though I'm tired so I want to sleep"); the reply pool leaves such human
  replies out for the same reason;
* ``agrees_with_a_put_down``: agrees with what the person just said against themselves ("I hadn't
  realized how fat I looked" - "Oh I'm sure you are now!"; "I'm such an idiot" - "Yeah, you are");
* ``minimizes``: makes light of what a distressed person feels ("That is not too bad.", "It could be
  worse", "At least...", "It happens to everyone", "cheer up");
* ``declares_love``: tells the person it loves them or has feelings for them ("i love you. what time did
  it take?");
* ``repeats_itself``: says the same sentence twice, or a sentence the bot already said earlier in the
  conversation ("Oh? How come so tired?" two turns running);
* ``unfinished``: stops mid-sentence;
* ``too_short``: fewer than three words;
* ``garbled``: runs of punctuation or symbols (",,,,", "==", "!?!?"), or words glued together;
* ``shouting``: three or more exclamation marks in a row, or words in capitals, to a person in distress.

``choose`` picks the candidate with the best ranker score among those with the fewest problems
(never-shown problems first); without scores, the first such candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from .advice import read_reply, sentences

NEVER = ("encourages_harm", "method_or_dose", "claims_human", "diagnosis", "insults", "system_prompt_leak", "harm_talk")
SOFT = ("advice_before_acknowledgement", "cheerful_to_distress", "cheer_without_good_news", "invents_a_loss", "misreads_a_loss",
        "sympathy_to_good_news", "doubts_good_news", "ignores_good_news", "ignores_the_feeling", "guesses_the_feeling", "blames", "tells_own_life", "agrees_with_a_put_down",
        "minimizes", "declares_love", "asks_what_was_said", "repeats_itself", "unfinished", "too_short", "garbled", "shouting")

_I = re.IGNORECASE
_HARM_VERBS = r"(?:kill|hang|hurt|harm|cut|shoot|drown|stab|poison|starve|end)"
_ENCOURAGES_HARM = re.compile(
    r"\b(?:just|go|should|could|can|must|why (?:don'?t|not)|better|might as well|then)\s+(?:\w+\s+){0,2}?"
    + _HARM_VERBS + r"\s+(?:your ?self|yourselves)\b|"
    r"\b" + _HARM_VERBS + r"\s+(?:your ?self|yourselves)\b(?![^.!?]*\?)|"  # an imperative, not a question
    r"\bkys\b|\bunalive (?:your ?self)\b|\b(?:end|take) your (?:own )?life\b(?![^.!?]*\?)|"
    r"\byou deserve (?:to (?:die|suffer|be (?:hurt|alone|punished|in pain)|feel (?:this|bad|pain))|"
    r"(?:it|this|that|the pain|what happened|every(?:thing| bit)))\b|"
    r"\b(?:you(?:'d| would) be )?better off dead\b|\b(?:nobody|no one|no-one) (?:would|will) (?:miss|care about|notice) you\b|"
    r"\bno one cares (?:about )?(?:you|if you)\b|\bthe world (?:would|will) be better without you\b|"
    r"\b(?:kill|hurt|hit|stab|shoot|beat up|punch) (?:him|her|them)\b(?![^.!?]*\?)", _I)
_METHOD_OR_DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mg|milligrams?|mcg|g|grams?|ml|millilit(?:er|re)s?|pills?|tablets?|capsules?|units?)\b|"
    r"\b(?:lethal|fatal|deadly|toxic) (?:dose|amount|quantity|method)\b|\boverdose on\b|"
    r"\b(?:how to|best way to|easiest way to) (?:kill|hang|overdose|cut|end)\b|\bnoose\b|\bslit (?:your|the) wrists?\b", _I)
_PROFESSIONS = (r"(?:human|real person|real human|person too|(?:licensed |certified |trained |qualified )?(?:therapist|"
                r"counsel+or|psychologist|psychiatrist|psychotherapist|doctor|physician|nurse|social worker|clinician))")
_CLAIMS_HUMAN = re.compile(
    r"(?<!not )(?<!n't )(?<!never )\b(?:i'?m|i am)\s+(?:a |an |your )?(?:actual |really a |actually a )?" + _PROFESSIONS + r"\b|"
    r"\bas (?:a|an|your) (?:licensed |certified |trained )?(?:therapist|counsel+or|psychologist|psychiatrist|doctor|"
    r"physician|nurse|clinician)\b|"
    r"(?<!not )\b(?:i'?m|i am) not (?:a |an )?(?:bot|robot|ai|machine|program|chatbot|computer|language model)\b|"
    r"\b(?:i'?m|i am|this is|my name is) dr\.?\s|\bmy (?:specialty|practice|patients|clients|license|credentials)\b|"
    r"\bi(?:'ve| have)? (?:got |had |seen |see |treat(?:ed)? |work with |worked with )(?:a few |some |many |lots of |a lot of |"
    r"several |plenty of |other )?(?:patients|clients)\b", _I)
# A question whether the bot is a person or a professional, and a reply that says yes to it.
_ASKS_HUMAN = re.compile(r"\b(?:are you|you'?re|is this|there'?s) (?:a |an )?(?:real |actual )?(?:human|person|people|"
                         r"someone|therapist|doctor|psychologist|counsel+or)\b|\bhuman (?:reading|typing|behind)\b", _I)
_SAYS_YES = re.compile(r"^\W*(?:oh\W+)?(?:yes|yeah|yep|yup|of course|sure|definitely|absolutely|i am|i'?m (?:sure|real|"
                       r"human|a person)|ok,? so i am)\b", _I)
_DISORDERS = (r"(?:clinical |major |severe |manic )?(?:depression|depressive disorder|bipolar(?: disorder)?|ptsd|c-ptsd|adhd|"
              r"add|ocd|bpd|borderline(?: personality disorder)?|(?:a |an )?(?:anxiety|panic|personality|eating|mood|"
              r"psychotic|stress) disorder|schizophrenia|psychosis|autism|narcissis(?:m|tic personality disorder)|"
              r"anorexia|bulimia|insomnia|dementia)")
_DIAGNOSIS = re.compile(
    r"\byou (?:have|'ve got|'ve|probably have|clearly have|definitely have|might have|may have|could have|are "
    r"suffering from|suffer from|seem to have|likely have)\s+(?:got\s+)?" + _DISORDERS + r"\b|"
    r"\b(?:sounds|seems|looks) like (?:you have |you've got )?(?:a case of )?" + _DISORDERS + r"\b|"
    r"\byou(?:'re| are) (?:clearly |definitely |probably )?(?:bipolar|depressed clinically|psychotic|autistic|"
    r"narcissistic|schizophrenic|a narcissist|a psychopath|a sociopath)\b|\bi (?:would )?diagnose\b", _I)
_INSULTS = re.compile(
    r"\byou(?:'re| are)(?: (?:such|so|just|really|being)){0,2} (?:a |an )?(?:idiot|stupid|pathetic|worthless|useless|"
    r"a loser|loser|dumb|weak|lazy|selfish|dramatic|overreacting|crazy|insane|an? (?:failure|burden|joke))\b|"
    r"\b(?:it'?s|it is|that'?s|that is) (?:all )?(?:your (?:own )?fault|on you)\b|\byou brought (?:this|it) on yourself\b|"
    r"\b(?:work|try|study) harder\b|\b(?:stop|quit) (?:whining|complaining|crying|being (?:so )?(?:dramatic|sensitive|"
    r"a baby))\b|\b(?:get|just get) over it\b|\bman up\b|\bgrow up\b|\bshut up\b|\bwho cares\b|\bnobody cares\b|"
    r"\byou (?:asked for|had it coming)\b|\bget your (?:life|act|shit|stuff) together\b|"
    r"\b(?:dumb|stupid|pathetic|weak|silly|crazy|idiots?) (?:for|to be) (?:being|feeling|getting)\b", _I)
# A cheerful opener ("Nice!", "Awesome, ...", after an "Oh", "Wow", "Oh my gosh" or "OMG") and gladness for
# the person ("glad to hear", "happy for you"), read by both cheer checks below.
_EXCLAIM = r"(?:(?:oh,? )?(?:my (?:god|gosh|goodness),? )|oh,? |wow,? |omg,? )"
_CHEER_OPENER = (r"^\W*" + _EXCLAIM + r"?(?:nice|great|awesome|amazing|wonderful|fantastic|excellent|cool|sweet)\b"
                 r"(?! (?:question|point))")
_GLAD_FOR_THEM = r"\b(?:glad|happy) (?:to hear|for you)\b|\bgood for you\b"
_CHEERFUL = re.compile(
    r"^" + _EXCLAIM + r"?(?:that'?s|that is|how|what)(?: (?:so|really|just))? (?:awesome|great|amazing|wonderful|fantastic|"
    r"exciting|cool|fun|lovely|nice|good|brilliant)\b|\bcongrat(?:ulation)?s\b|"
    r"\bi hope you(?:'re| are) (?:happy|having fun|enjoying it)\b|\b(?:a?ha(?:ha)+h?|he(?:he)+|lo+l|lmao|rofl|yay|woohoo)\b|"
    + _CHEER_OPENER + r"|^\W*(?:yes|yay|yeah|yess+)!|" + _GLAD_FOR_THEM + r"|\bgreat (?:day|time|news)\b|"
    r"\b(?:must be|sounds?|looks?) (?:like )?(?:so |really |very )?(?:exciting|fun|great|awesome|amazing|wonderful|cool|lovely)\b|"
    r"\byou must be (?:so |really |very )?proud(?:\W*$|\s*[!.])|"
    r"[😀😃😄😁😆😂🤣😊🥳🎉]|:\)|:D", _I)
# Sharing a joy the person never told of: congratulations, "glad to hear that", "happy for you", "yay",
# a "Nice!" or "Awesome" to open ("Okay I guess." - "I'm glad to hear that." / "Awesome, how are you
# doing?"; "I'm having a hard time recharging" - "I am glad to hear that you are having a hard time").
_SHARES_JOY = re.compile(r"\bcongrat(?:ulation)?s\b|" + _GLAD_FOR_THEM + r"|\b(?:yay|woohoo|hooray)\b|[🥳🎉]|"
                         + _CHEER_OPENER, _I)
# Setbacks told in words that read as neutral or even glad to an emotion classifier ("I got passed over
# for a promotion" reads as positive from "promotion"): a cheerful reply to them hurts all the same.
_BAD_NEWS = re.compile(
    r"\b(?:passed over|turned down|laid off|let go|kicked out|broken into|broke into|broke up|broken up|dumped|"
    r"cheated on|cheating on|cheating with|cheated with|ran off with|left me for|walked out on|stood up|ghosted|"
    r"evicted|demoted|fired|rejected|robbed|mugged|scammed|burgl[ae]d|stolen|totall?ed|"
    r"miscarr(?:y|ied|iage)|diagnosed|died|passed away|put (?:down|to sleep)|(?<!never )(?<!not )relapsed)\b|"
    r"\b(?:didn'?t|did not|never|couldn'?t|could not|won'?t|will not|wasn'?t|was not|weren'?t|not) "
    r"(?:get|got|getting|make|made|win|won|pass|passed|be (?:chosen|picked|selected|accepted|hired|invited)|"
    r"(?:chosen|picked|selected|accepted|hired|invited|approved|promoted|admitted))\b|"
    r"\b(?:lost|failed|flunked|missed|crashed|wrecked|ruined|broke|cancell?ed) (?:my|our|the|his|her|their|a|an)\b|"
    r"\b(?:my|our|the) \w+ (?:broke down|died|was stolen|got stolen|was cancell?ed|fell through)\b", _I)
# ...unless it is a relief ("I didn't get hurt", "we weren't fired") or a record broken
_RELIEF = re.compile(
    r"\b(?:didn'?t|did not|never|wasn'?t|was not|weren'?t|were not|not) (?:get |got |been |be )?(?:hurt|injured|sick|"
    r"caught|fired|rejected|robbed|in trouble|a ticket|lost|dumped|laid off|let go|evicted|scammed|stolen|cancell?ed)\b|"
    r"\bbr(?:oke|eak) (?:my|the|a|our) (?:own |personal |world |school |previous )?records?\b", _I)
# A death told by the person, and a reply that hopes or asks whether the one who died is all right
# ("My dog died this morning." - "Is he okay now?").
_A_DEATH = re.compile(r"\b(?:died|passed away|passed on|put (?:him |her |it )?(?:down|to sleep)|was killed|got killed|"
                      r"put (?:our|my|his|her|the|their) (?:old |sweet |lovely |little )?(?:dog|cat|pet|puppy|kitten|horse|"
                      r"rabbit)(?: (?!(?:bed|bowl|lead|leash|food|toys?|crate|basket|blanket|cage|door)\b)\w+)? "
                      r"(?:down|to sleep)|"
                      r"funeral|bury|burying|buried|burial|cremated|is dead|was dead|are dead)\b", _I)


_ASKS_IF_ALIVE = re.compile(
    r"\b(?:hope|hoping|hopefully|is|was|are|were|will|did|does) (?:he|she|it|they|your \w+|the \w+|him|her)"
    r"(?: is| was| were| are| will be| gets?| got)? (?:ok|okay|alright|all right|fine|alive|safe|better|recovering|"
    r"doing (?:ok|okay|well|better)|going to (?:be|make it)|survive[sd]?|make it|pull(?:s|ed)? through)\b|"
    r"\b(?:find|found) (?:him|her|it|them)\b|\bget (?:well|better) soon\b|\bdid (?:he|she|it|they) (?:die|pass)\b|"
    r"\bwhere (?:did|has|have|is|are) (?:he|she|it|they) (?:go|gone)\b|\breplac(?:e|ed|ing) (?:him|her|it|them)\b|\b(?:get|getting|got|adopt|adopting|buy|buying) (?:a )?(?:new|another) "
    r"(?:one|dog|cat|pet|puppy|kitten)\b", _I)  # ...or offers a replacement for them
_LOSS_WORDS = re.compile(
    r"\b(?:sorry (?:for|about) your loss|condolences|rest in peace|\brip\b|passed away|(?:may|might) (?:he|she|they) rest|"
    r"in a better place|lost (?:your|a) (?:loved one|mother|father|mom|dad|friend|child|son|daughter|husband|wife|pet))", _I)
_SUICIDE_TALK = re.compile(
    r"\b(?:end(?:ed|s|ing)?|took|take|taking) (?:his|her|their|your|my) (?:own )?life\b|\bkill(?:ed|s|ing)? "
    r"(?:him|her|them|your|my)sel(?:f|ves)\b|\bcommit(?:ted|s|ting)? suicide\b|\bsuicid(?:e|al)\b|"
    r"\b(?:hang|hanged|hung) (?:him|her|them|your)sel(?:f|ves)\b|\boverdos(?:e|ed)\b", _I)
_DEATH_IN_CONTEXT = re.compile(
    r"\b(?:die[ds]?|dead|death|dying|passed|pass away|funeral|grave|lost (?:my|our|her|his)|loss|killed|put (?:down|to sleep)|"
    r"gone|buried|suicide|rip|cancer|terminal|hospice|miscarriage|stillborn|widow)\b", _I)
# "Died" and "dead" said of things, or in jest ("my laptop died", "the battery is dead", "I died laughing"):
# no death told. Only a thing named right before the verb, after "my", "the"...; nothing said of a person,
# a pet or "it" ("My cat was old. It died this morning." is a death). Taken out of what the person said
# before looking for a death.
_THINGS = (r"(?:phone|iphone|laptop|computer|pc|mac|macbook|tablet|ipad|kindle|battery|batteries|car|engine|truck|van|"
           r"bike|scooter|plants?|garden|flowers|tv|telly|console|xbox|playstation|ps[345]|switch|controller|mouse|"
           r"keyboard|headphones|airpods|earbuds|charger|router|modem|wifi|internet|printer|fridge|freezer|oven|"
           r"microwave|boiler|heater|heating|blender|kettle|washer|dryer|dishwasher|watch|camera|hard drive|drive|"
           r"server|screen|monitor|speaker|lights?|bulb|torch|flashlight|vacuum|hoover|conversation|chat|group chat|"
           r"party|vibe|mood|joke|game|show|series|account|project|deal|motivation|signal|connection|radio|"
           r"toothbrush|remote|calculator|power|sourdough starter|tamagotchi)")
NOT_A_DEATH = re.compile(
    r"\b(?:my|the|our|his|her|their|your|a|an) (?:old |new |stupid |poor )?" + _THINGS +
    r"(?: (?:is|was|has|had|just|finally|completely|totally))* (?:died|dead|dying)\b|"
    r"\b(?:almost|nearly) died\b|\bdied (?:laughing|of (?:embarrassment|laughter|shame|boredom|cringe|cuteness))\b", _I)


def last_said(conversation: Sequence[dict]) -> str:
    """The person's last message (the text of the last user turn), or "" when there is none."""
    return next((m.get("content", "") for m in reversed(conversation) if m.get("role") == "user"), "")


def said_for_deaths(messages: Sequence[dict]) -> str:
    """What the person said in ``messages``, as a death is read from it: their messages joined, curly
    apostrophes made plain, and the things that "died" (``NOT_A_DEATH``) taken out."""
    said = " ".join(m.get("content", "") for m in messages if m.get("role") == "user")
    return NOT_A_DEATH.sub(" ", said.replace("\u2019", "'"))


# Commiseration, wrong for good news ("I got into medical school!" - "Oh no, I'm sorry to hear that.")
_SYMPATHY = re.compile(
    r"\b(?:sorry (?:to hear|for|about|that)|i'?m (?:so |really |very )?sorry\b(?! (?:i|if|but|for asking))|"
    r"oh no\b|that'?s (?:so |really |too )?(?:terrible|awful|horrible|sad|bad|rough|tough|unfortunate|a shame)\b|"
    r"too bad\b|that (?:really |totally |so |just )?sucks\b|(?:that|it) must (?:be|have been) (?:so |really |very )?(?:hard|difficult|tough|rough|painful|"
    r"awful|terrible|devastating|heartbreaking)\b|my (?:deepest )?sympath|condolences|hang in there)", _I)


_DOUBTS = re.compile(
    r"\b(?:hope|hoping|wish|fingers crossed)(?: that)? (?:you|it|they|he|she)(?:'ll| will)? (?:get|gets|pass|passes|win|wins|"
    r"make it|hear|find out)\b(?! to\b)|"
    r"\b(?:did|do|does) (?:you|it|they|he|she) not\b|\b(?:didn't|haven't|hasn't) (?:you|it|they|he|she)\b|"
    r"\b(?:did|have|has|will) (?:you|they|he|she) (?:get|got|gotten|pass|passed|win|won|make|made|hear|heard|find out|"
    r"be accepted|been accepted|been offered)(?: it| in| through| back| the (?:job|offer|place|part|results?))?\s*(?:yet\s*)?\?|"
    r"\byet\s*[?/]|\bwhen (?:will|do) you (?:find out|hear|know)\b|\bare you (?:ok|okay|alright|all right)\b|"
    r"\b(?:are you going to|will you|how do you|how can you|how to) (?:get|pass|win) (?:the|it|in)\b|"
    r"\bwhat went wrong\b", _I)
# ...and what doubts it only where nothing in the reply congratulates ("Well done! Next time you can drive
# us!", "Congrats and good luck in your new job!")
_WISHES_LUCK = re.compile(r"\bgood luck\b|\bbest of luck\b|\bnext time\b|\btry again\b", _I)
_CONGRATULATES = re.compile(r"\bcongrat|\bwell done\b|\bproud of (?:you|yourself)\b|\bhappy for you\b|"
                            r"\bnew (?:job|role|house|home)\b|\byou did it\b", _I)


def doubts_good_news(reply: str) -> bool:
    """Whether a reply to good news told as done treats it as still to come or gone wrong (see the module
    docstring): "Did you not pass?", "I hope you get the job", "have you been accepted yet?", or good luck
    with nothing to congratulate."""
    text = reply.replace("\u2019", "'")
    return bool(_DOUBTS.search(text) or (_WISHES_LUCK.search(text) and not _CONGRATULATES.search(text)))


# Gladness with the person, or their relief (laughter is not: "lol" celebrates nothing)
_CELEBRATES = re.compile(
    r"\bcongrat|\bwell done\b|\bproud of (?:you|yourself)\b|\b(?:happy|glad|thrilled|excited|relieved|so pleased) "
    r"(?:for you|to hear)\b|\b(?:so|really|very) (?:glad|happy|pleased|relieved)\b|\byou did it\b|"
    r"\b(?:what a|such a|a huge|a big|great) relief\b|\bweight off\b|\bthank (?:goodness|god)\b|\bphew\b|"
    r"\b(?:great|wonderful|fantastic|amazing|brilliant|good|excellent) news\b|"
    r"^" + _EXCLAIM + r"?(?:that'?s|that is|how|what|you'?re|this is)(?: (?:so|really|just|pretty|very|absolutely|truly))? "
    r"(?:awesome|great|amazing|wonderful|fantastic|exciting|incredible|brilliant|excellent|huge|impressive|lovely)\b|"
    + _CHEER_OPENER + r"|\b(?:yay|woohoo|hooray)\b|[🥳🎉🙌]|"
    r"\b(?:must be|sounds?|looks?) (?:like )?(?:so |really |very )?(?:exciting|great|awesome|amazing|wonderful|incredible)\b|"
    r"\byou must be (?:so |really |very )?(?:proud|thrilled|relieved|excited|over the moon)\b", _I)


def celebrates(reply: str) -> bool:
    """Whether a reply celebrates with the person or shares their relief: "That's great!", "congrats",
    "happy for you", "Nice!", "what a relief", "you did it", "that's incredible"."""
    return bool(_CELEBRATES.search(reply.replace("\u2019", "'").strip()))


# Naming or meeting what the person feels, beyond commiseration: "That sounds really hard", "I can
# imagine", "that's a lot", "I'd be fed up too"
_FELT = (r"(?:hard|tough|rough|difficult|frustrating|stressful|awful|painful|exhausting|lonely|scary|upsetting|heavy|"
         r"maddening|overwhelming|nerve-racking|worrying|horrible|terrible|sad|infuriating|annoying|unfair|"
         r"heartbreaking|a lot|so much|not easy|understandable)")
_ACKNOWLEDGES = re.compile(
    r"\b(?:sounds?|seems?|must (?:be|feel)|looks?|that'?s|that is|it'?s|that was|what an?) (?:like )?(?:it'?s |it was |"
    r"it has been |a |an )?(?:so |really |very |incredibly |pretty |quite |a bit |such an? )?" + _FELT + r"\b|"
    r"\bi can (?:only )?(?:see|imagine|understand|hear)\b|\bi'?d be (?:fed up|upset|angry|frustrated|worried|"
    r"annoyed|furious) too\b|\bweighing on you\b|\bon edge\b|\bno wonder\b|\byou (?:clearly )?care\b|"
    r"\bthat'?s no good\b", _I)


def acknowledges(reply: str) -> bool:
    """Whether a reply commiserates or names what the person feels ("That sounds really hard", "I can
    imagine", "I'd be fed up too"; see ``offers_sympathy``)."""
    text = reply.replace("\u2019", "'")
    return bool(_SYMPATHY.search(text) or _ACKNOWLEDGES.search(text))


def offers_sympathy(reply: str) -> bool:
    """Whether a reply commiserates: "I'm sorry to hear that", "oh no", "that must be hard"."""
    return bool(_SYMPATHY.search(reply.replace("\u2019", "'")))


_ASKS = re.compile(r"\?[\"'”’)\]]*\s*$")


def asks_a_question(reply: str) -> bool:
    """Whether a reply ends by asking the person something ("...How are you holding up?")."""
    return bool(_ASKS.search(reply))


# The bot telling of a life it does not have: people, pets and places of its own, its past ("I have a
# boss who...", "I would not drive around with my cat!", "I live right down the road too").
_KIN = (r"(?:best )?(?:friends?|boss|bosses|co-?workers?|colleagues?|sisters?|brothers?|siblings?|mom|mum|mother|dad|"
        r"father|parents|wife|husband|sons?|daughters?|kids?|children|bab(?:y|ies)|dogs?|cats?|pupp(?:y|ies)|kittens?|"
        r"pets?|animals|girlfriend|boyfriend|partner|fianc[eé]e?|family|grand\w+|cousins?|aunts?|uncles?|"
        r"neighbou?rs?|roommates?|house|apartment|car|truck)")
_OWN_LIFE = re.compile(
    r"\bi (?:have|had|'ve had|'ve got|got|own|owned|lost) (?:a|an|two|three|four|my|some|many|lots of|a lot of|few|"
    r"a few) (?:\w+ ){0,2}" + _KIN + r"\b|\bmy (?:own |little |older |younger |best |\w+ year old )?" + _KIN + r"\b|"
    r"\bi (?:live|lived|work|worked|grew up|went to|go to|used to (?:live|work|have|go|be))\b|\bi'?ve been to\b|"
    r"\bi'?ve (?:lived|worked|studied|grown up)\b|\bi'?ve been in your shoes\b|"
    r"\bi(?:'m| am) (?:a|an) (?:\w+ )?(?:student|teacher|nurse|mom|mum|mother|father|dad|parent|wife|husband|grandma|"
    r"grandmother|retiree|pensioner|manager|engineer)\b|"
    r"\bwhen i was (?:a |an |young|little|in |your age|\d)|\bhappened to me\b|\bsame (?:thing )?happened\b|"
    r"\bi(?:'m| am) (?:so |really |very |also |too |pretty |a bit |kind of )?(?:tired|exhausted|sleepy|hungry|"
    r"hungover)(?=\s*(?:[.,!]|$|so |and |too\b|now\b|right now\b|today\b|tonight\b|myself\b))|"
    r"\bi (?:want|need|have|got) to (?:sleep|go to bed|go to work)(?=\s*(?:[.,!]|$|now\b|soon\b|too\b|early\b))", _I)


# Love for the person, from a bot they met a minute ago ("i love you. what time did it take?" to a complaint
# about a boss)
_DECLARES_LOVE = re.compile(r"\bi (?:love|adore) you\b|\bi(?:'m| am) (?:in love|falling in love) with you\b|"
                            r"\bi(?: have|'ve)(?: got)? (?:a crush on|feelings for) you\b", _I)


# Asking which kind of thing it was when the person named the kind: "What kind of test was it?" to "I
# failed my driving test" (the pool's human replies were written to someone who had not said).
_WHICH_KIND = re.compile(r"\bwhat (?:kind|sort|type)s? of (\w+)", _I)
_DETERMINERS = frozenset({"a", "an", "the", "my", "your", "his", "her", "our", "their", "this", "that"})
# words between a determiner and a thing that do not name its kind ("my new job", "the whole test")
_NOT_A_KIND = frozenset({"new", "old", "big", "small", "little", "first", "second", "third", "last", "next", "whole",
                         "own", "other", "same", "only", "current", "good", "bad", "great", "stupid", "damn",
                         "very", "real", "final", "latest", "one", "usual"})


def _one(word: str) -> str:
    """A plural as its singular, roughly ("tests" -> "test", "classes" -> "class")."""
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def asks_what_was_said(reply: str, conversation: Sequence[dict]) -> bool:
    """Whether the reply asks what kind of thing it was ("What kind of test?") when the person's recent
    messages named the kind: a determiner, one or two words the last of which names it, the thing ("my
    driving test", "our old labrador dog", "a two bedroom flat"; not "my new job", "I hate work")."""
    recent = "\n".join(m.get("content", "") for m in conversation[-6:] if m.get("role") == "user")
    said_parts = [re.findall(r"[\w']+", part) for part in re.split(r"[.!?\n]+", recent.lower().replace("\u2019", "'"))]
    for m in _WHICH_KIND.finditer(reply):
        thing = _one(m.group(1).lower())
        for said in said_parts:
            for i in range(2, len(said)):
                if _one(said[i]) != thing or said[i - 1] in _NOT_A_KIND or said[i - 1] in _DETERMINERS:
                    continue
                if said[i - 2] in _DETERMINERS or (i >= 3 and said[i - 3] in _DETERMINERS
                                                   and said[i - 2] not in _DETERMINERS):
                    return True
    return False



# Questions and judgements that put the blame on the person
_BLAMES = re.compile(
    r"\b(?:then |so )?why (?:on earth )?(?:did|would|didn'?t|wouldn'?t) you (?:even |ever |just )?"
    r"(?:do|say|let|go|agree|trust|believe|leave|buy|try|bother|listen|stay|care)\b[^.!?]*\?|"
    r"\bwhat (?:were|was) you thinking\b|\bwhat did you expect\b|"
    r"\byou (?:should(?:'?ve| have)|could(?:'?ve| have)|ought to have) (?:known|listened|thought|been more|done|tried|"
    r"told|asked|checked|seen|stopped|left|said)\b|\byou shouldn'?t have\b|\bthat was (?:so |pretty |really )?"
    r"(?:stupid|dumb|careless|silly|foolish|reckless|irresponsible) of you\b|"
    r"\bare you (?:sure|certain) (?:that )?(?:they|he|she|it|this|that|they'?re|he'?s|she'?s|it'?s)\b(?! (?:is |was )?"
    r"(?:ok|okay|alright|all right|fine|safe)\b)", _I)
# What a person says against themselves ("I hadn't realized how fat I looked", "I'm such an idiot"),
# and a reply that agrees with it ("I'm sure you are", "yes, you are", "you really are")
_PUT_DOWN = re.compile(
    r"\b(?:i(?:'m| am| was| feel| felt| look| looked| must look| must be)|how|i'm such|i am such|i was such) "
    r"(?:so |really |very |too |such |just |kind of |a bit )?(?:an? )?(?:fat|ugly|stupid|dumb|worthless|useless|"
    r"a failure|failure|a loser|loser|a burden|burden|pathetic|annoying|boring|unlovable|disgusting|an idiot|idiot|"
    r"a mess|hopeless|weak|lazy|a joke|a disappointment|overweight|gross)\b(?: i (?:am|was|look|looked|felt))?", _I)
_AGREES = re.compile(
    r"^\W*(?:oh,? |well,? |yeah,? |yes,? )?(?:i'?m sure you (?:are|were|do|did|look|looked)|i bet you (?:are|were|do|"
    r"did|look|looked)|you (?:really |certainly |definitely )?(?:are|were|do|did|look|looked)(?: (?:now|then|indeed))?"
    r"\W*$|(?:yes|yeah|yep),? you (?:are|were|do|did|look|looked)\b|(?:i agree|that'?s true|you'?re right)\b(?! to\b))", _I)
# Making light of what the person feels ("it could be worse", "at least...", "cheer up"): invalidating
# to someone in distress, however kindly meant
_MINIMIZES = re.compile(
    r"\b(?:(?:that|it|this)(?:'s| is| was)(?: really| honestly)? not (?:too|that|so|all that) bad|(?:could|can) "
    r"(?:be|have been|get) (?:a lot |much )?worse|no big deal|not a big deal|(?:it'?s|that'?s|it is|that is) (?:nothing|"
    r"not the end of the world)|cheer up|look on the bright side|(?:don'?t|do not) (?:worry|stress|cry) about it|"
    r"it happens to (?:everyone|everybody|all of us)|everyone goes through)\b|^\W*at least\b", _I)
_WORD = re.compile(r"[\w']+")
_GARBLED = re.compile(r"([,;:=_*#~<>/\\|^])\1{2,}|[,;:=_*#~<>|^]{4,}|(?:[!?.]{2,}[,;:=]+)|[a-z]{4,}[A-Z][a-z]+[A-Z]|\w{25,}")
_SHOUT = re.compile(r"!{3,}|\b[A-Z]{4,}\b")


@dataclass
class Candidate:
    """One candidate reply, its ranker score (None without a ranker), and what is wrong with it."""

    text: str
    score: float | None = None
    problems: tuple[str, ...] = ()
    source: str = "model"  # "model", "written", "retrieved" (a human reply from the reply pool), "opener" (a
    # written opener, the whole reply: ``bot.openers``)
    fit: float | None = None  # the ranker's fit alone
    emotion_fit: float | None = None  # how the reply's emotions match human listeners' answers to this feeling
    similarity: float | None = None  # retrieved: how near the conversation it answered lies to this one
    opener: str | None = None  # the written words it starts with (``bot.openers``)

    @property
    def shown_never(self) -> bool:
        return any(p in NEVER for p in self.problems)

    def to_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 3)

        return {"text": self.text, "score": r(self.score), "fit": r(self.fit), "emotion_fit": r(self.emotion_fit),
                "problems": list(self.problems), "source": self.source,
                **({"similarity": r(self.similarity)} if self.similarity is not None else {}),
                **({"opener": self.opener} if self.opener else {})}


@dataclass
class Choice:
    index: int | None  # None: every candidate had a never-shown problem
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def chosen(self) -> Candidate | None:
        return None if self.index is None else self.candidates[self.index]


def leaks_instructions(reply: str, instructions: str, n: int = 8) -> bool:
    """Whether ``reply`` repeats ``n`` or more words of ``instructions`` in a row (case and punctuation aside)."""
    words = [w.lower() for w in _WORD.findall(instructions)]
    if len(words) < n:
        return False
    grams = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    said = [w.lower() for w in _WORD.findall(reply)]
    return any(tuple(said[i:i + n]) in grams for i in range(len(said) - n + 1))


def never_problems(reply: str, instructions: str = "") -> list[str]:
    """The never-shown problems of a reply (see the module docstring)."""
    text = reply.replace("\u2019", "'")
    found = []
    for name, pattern in (("encourages_harm", _ENCOURAGES_HARM), ("method_or_dose", _METHOD_OR_DOSE),
                          ("claims_human", _CLAIMS_HUMAN), ("diagnosis", _DIAGNOSIS), ("insults", _INSULTS)):
        if pattern.search(text):
            found.append(name)
    if instructions and leaks_instructions(text, instructions):
        found.append("system_prompt_leak")
    return found


def _says_it_is_human(reply: str, conversation: Sequence[dict]) -> bool:
    return bool(_ASKS_HUMAN.search(last_said(conversation).replace("\u2019", "'")) and _SAYS_YES.search(reply))


def tells_bad_news(conversation: Sequence[dict], turns: int = 3) -> bool:
    """Whether the person's last ``turns`` messages tell of a setback or a loss in words an emotion
    classifier may read as neutral or glad ("I got passed over for a promotion", "I didn't get the
    part", "my car broke down"): a cheerful reply is as wrong there as to a sad message."""
    said = [m.get("content", "") for m in conversation if m.get("role") == "user"][-turns:]
    return any(_BAD_NEWS.search(_RELIEF.sub(" ", t.replace("\u2019", "'"))) for t in said)


# Deaths told in words the checks' own reading (``_A_DEATH``) leaves out: "my mum passed last week", "he's
# been gone 18 months", "stillborn", "lost the baby", "found him dead", "widowed".
_LOVED = (r"(?:mum|mom|mother|mam|dad|father|wife|husband|partner|son|daughter|baby|brother|sister|friend|grandma|"
          r"grandmother|grandad|grandpa|grandfather|nan|nana|aunt|uncle|cousin|dog|cat|fianc[eé]e?|boyfriend|girlfriend)")
_GONE = re.compile(
    r"\b(?:(?:he|she|they|" + _LOVED + r")(?:'s| is| has| have|'ve) been gone|"
    r"" + _LOVED + r" passed(?= (?:away|on|last|in|this|recently|suddenly|yesterday|today|earlier|\d|two|three|a few|"
    r"peacefully|at)\b)|"
    r"since (?:he|she|they) (?:died|passed|went)|widow(?:ed|er)?|stillborn|miscarr(?:y|ied|iage)|lost (?:the|our|my) "
    r"baby|(?:found|find) (?:him|her|them|my \w+|our \w+) dead|(?:first|second) (?:christmas|birthday|anniversary) "
    r"without (?:him|her|them))\b", _I)


def tells_of_a_death(conversation: Sequence[dict], turns: int = 3) -> bool:
    """Whether the person's last ``turns`` messages tell of a death ("my dad died", "He's been gone 18 months
    now"; not "my laptop died"): no good news told beside it is to be congratulated ("Twenty years ago
    today we got married. He's been gone 18 months")."""
    said = [said_for_deaths([m]) for m in conversation if m.get("role") == "user"][-turns:]
    return any(_A_DEATH.search(t) or _GONE.search(t) for t in said)


def puts_self_down(conversation: Sequence[dict]) -> bool:
    """Whether the person's last message says something against themselves ("I hadn't realized how fat
    I looked", "I'm such an idiot"): agreeing hurts, and so does cheer, whatever emotion it reads as."""
    return bool(_PUT_DOWN.search(last_said(conversation).replace("\u2019", "'")))


_CONTRACTIONS = ((re.compile(r"\bcan't\b"), "cannot"), (re.compile(r"\bwon't\b"), "will not"),
                 (re.compile(r"n't\b"), " not"), (re.compile(r"'m\b"), " am"), (re.compile(r"'re\b"), " are"),
                 (re.compile(r"'ve\b"), " have"), (re.compile(r"'ll\b"), " will"), (re.compile(r"'d\b"), " would"))


def _expand(text: str) -> str:
    for pattern, full in _CONTRACTIONS:
        text = pattern.sub(full, text)
    return text


def _plain_sentences(parts: Sequence[str]) -> list[str]:
    """Sentences of three words or more, lower case, contractions spelled out, punctuation gone:
    "I'm glad you got it done!" and "i am glad you got it done" are one sentence."""
    plain = [re.sub(r"\W+", " ", _expand(s.lower().replace("\u2019", "'"))).strip() for s in parts]
    return [s for s in plain if len(s.split()) >= 3]


def reply_problems(reply: str, conversation: Sequence[dict] = (), distressed: bool = False,
                   instructions: str = "", finished: bool = True, at_risk: bool = False,
                   glad: bool = False, joyless: bool = False, good_news: bool = False,
                   acknowledged: bool = False) -> tuple[str, ...]:
    """Everything wrong with one candidate reply to ``conversation`` (which ends with the user's
    message). ``distressed``: the person's emotion state is negative (sad, afraid, angry...).
    ``glad``: the person's message reads as glad and tells of no setback (``tells_bad_news``).
    ``joyless``: the message shows no gladness at all (``bot.core.is_joyless``): nothing to congratulate.
    ``good_news``: the message tells of good news as done (``bot.goodnews``), which the reply must not doubt.
    ``acknowledged``: some candidates of this turn start from a written acknowledgement (``bot.openers``),
    so a reply to a distressed person that acknowledges nothing is passed over.
    ``finished``: False when generation stopped at the token limit. ``at_risk``: the conversation is
    about a possible crisis, so asking about suicide is in place."""
    text = reply.strip()
    found = never_problems(text, instructions)
    if "claims_human" not in found and _says_it_is_human(text, conversation):
        found.append("claims_human")  # "Are you a real person?" - "Oh yes!"
    if read_reply(text).advice_before_acknowledgement:
        found.append("advice_before_acknowledgement")
    if distressed and _CHEERFUL.search(text):
        found.append("cheerful_to_distress")
    elif joyless and not glad and _SHARES_JOY.search(text):
        found.append("cheer_without_good_news")
    if acknowledged and distressed and not acknowledges(text):
        found.append("ignores_the_feeling")
    if glad and not distressed and offers_sympathy(text):
        found.append("sympathy_to_good_news")
    if good_news and not distressed and doubts_good_news(text):
        found.append("doubts_good_news")
    if good_news and not distressed and not celebrates(text):
        found.append("ignores_good_news")
    if _BLAMES.search(text):
        found.append("blames")
    if _OWN_LIFE.search(text.replace("\u2019", "'")):
        found.append("tells_own_life")
    if _DECLARES_LOVE.search(text.replace("\u2019", "'")):
        found.append("declares_love")
    if asks_what_was_said(text, conversation):
        found.append("asks_what_was_said")
    parts = sentences(text)
    if puts_self_down(conversation) and any(_AGREES.search(s) for s in parts):
        found.append("agrees_with_a_put_down")
    if distressed and any(_MINIMIZES.search(s) for s in parts):
        found.append("minimizes")
    said = said_for_deaths(conversation)
    if _LOSS_WORDS.search(text) and not _DEATH_IN_CONTEXT.search(said):
        found.append("invents_a_loss")
    if _ASKS_IF_ALIVE.search(text) and _A_DEATH.search(said[-2000:]):
        found.append("misreads_a_loss")
    if _SUICIDE_TALK.search(text) and not at_risk and not _DEATH_IN_CONTEXT.search(said):
        found.append("harm_talk")  # suicide or overdose talk that nobody raised
    sents = _plain_sentences(parts)
    earlier = {s for m in conversation if m.get("role") == "assistant"
               for s in _plain_sentences(sentences(m.get("content", "")))}
    if len(sents) != len(set(sents)) or earlier.intersection(sents):
        found.append("repeats_itself")
    if not finished or (text and text[-1].isalnum() and len(text.split()) > 6 and not re.search(r"[.!?…)\"'”’]$", text)):
        found.append("unfinished")
    if len(_WORD.findall(text)) < 3:
        found.append("too_short")
    if _GARBLED.search(text):
        found.append("garbled")
    if distressed and _SHOUT.search(text):
        found.append("shouting")
    return tuple(found)


def choose(candidates: list[Candidate]) -> Choice:
    """The candidate to show: fewest never-shown problems (must be none), then fewest others, then the
    best ranker score, then the earliest."""
    if not candidates:
        return Choice(None, [])
    allowed = [i for i, c in enumerate(candidates) if not c.shown_never]
    if not allowed:
        return Choice(None, candidates)

    def key(i: int):
        c = candidates[i]
        return (len(c.problems), -(c.score if c.score is not None else 0.0), i)

    return Choice(min(allowed, key=key), candidates)

"""Acknowledge before advising: does a reply name the feeling before it offers solutions?

Each sentence of a reply is read for advice (suggestions, instructions, "have you tried...") and for
acknowledgement of the person's feeling or situation ("that sounds exhausting", "I'm sorry", "I can
imagine..."). A reply is:

* ``advice``: it has at least one advice sentence (a solution-focused reply);
* ``advice_before_acknowledgement``: it gives advice and no sentence before its first advice sentence
  acknowledges the feeling (a sentence with both counts as acknowledging first).

The share of ``advice_before_acknowledgement`` replies is the suite's headline: lower is better. For
scale: Iftikhar et al. (2024) found 61% of GPT-4o's and 40% of Mistral-7B's replies to ESConv seekers
solution-focused (a looser criterion than ours: any advice, acknowledged or not; compare with
``advice``).

The detector is a set of phrase rules, so it is transparent and fast; its agreement with human labels
is measured on ESConv, whose supporter turns are annotated with a strategy: turns annotated "Providing
Suggestions" should be flagged as advice (``validate_on_esconv``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ADVICE = re.compile(
    r"\byou (?:should|could|might want to|may want to|need to|have to|must|ought to|can always|can try)\b|"
    r"\b(?:i (?:would )?(?:suggest|recommend|advise)|my advice|i(?:'d| would) (?:suggest|recommend|try|advise)|"
    r"it (?:might|may|would|could|can) (?:help|be (?:good|helpful|useful|a good idea|worth))|"
    r"have you (?:tried|considered|thought about|thought of|looked into)|why (?:don't|not) you|how about (?:you|trying)|"
    r"have you (?:had (?:a|the) chance to )?(?:spoken|talked|reached out) to|"
    r"(?:can|could) you (?:possibly |maybe )?(?:try|talk|ask|speak|reach out|discuss|go|look)|"
    r"you (?:may|might) be able to|don't hesitate|look into|would (?:really )?help you|"
    r"it(?:'s| is) (?:always )?(?:good|helpful|worth) (?:to|trying)|"
    r"what if you|the best (?:thing|way)|it's (?:important|best|a good idea) to|it is (?:important|best) to|"
    r"(?:one|another) (?:option|thing you (?:can|could) do)|maybe (?:you|try)|perhaps (?:you|try)|"
    r"if i were you|try (?:to|and|not|talking|writing|taking|going|getting|doing|reaching)|maybe (?:take|try|talk|ask|get|go|"
    r"sign up|look|write|call|find|reach)|"
    r"make sure|don't forget to|remember to)\b", re.IGNORECASE)
# An imperative at the start of a sentence: "Take a break.", "Talk to your manager."
_IMPERATIVE = re.compile(
    r"^(?!take care\b)(?:please |just |maybe |so )?(?:try|take|talk|go|get|make|consider|ask|tell|call|reach out|find|write|"
    r"focus|remember|don't|do not|stop|keep|give|let|start|look|see|seek|avoid|join|spend|set|practice|"
    r"practise|breathe|exercise|sleep|eat|drink|plan|speak|contact|book|schedule)\b", re.IGNORECASE)
_ACKNOWLEDGE = re.compile(
    r"\b(?:i'?m (?:so |really |very |truly )?sorry|sorry to hear|sorry (?:that|for|about)|"
    r"(?:that|this|it) (?:sounds|must be|must have been|seems|feels)|sounds (?:like|really|so|very|incredibly|"
    r"hard|tough|awful|difficult|frustrating|scary|painful|exciting|wonderful|great|stressful|lonely|overwhelming)|"
    r"i (?:can )?(?:totally |completely |really )?(?:understand|imagine|hear you|see why|see how|get (?:it|that|why))|"
    r"i'?m (?:so |really )?(?:glad|happy|proud|thrilled) (?:for|of|that|to hear)|congratulations|congrats|"
    r"how (?:awful|terrible|frustrating|scary|sad|exciting|wonderful|hard|painful|stressful)|"
    r"(?:that|this|it)'?s (?:so |really |very |completely |totally )?(?:hard|tough|awful|terrible|rough|frustrating|scary|sad|"
    r"painful|heartbreaking|understandable|normal|okay|ok|valid|natural|great|wonderful|amazing|exciting|"
    r"a lot|difficult|stressful|unfair)|"
    r"you must (?:feel|be|have)|must (?:feel|be) (?:so|really|very)|your feelings|you(?:'re| are) (?:feeling|going through|"
    r"dealing with)|makes (?:total |complete )?sense|no wonder|what a (?:relief|shame|pity|great|wonderful))\b",
    re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split((text or "").replace("\u2019", "'")) if s.strip()]


def is_advice(sentence: str) -> bool:
    if _ADVICE.search(sentence):
        return True
    # An imperative opening, unless the sentence is a question ("Tell me more?" explores).
    return bool(_IMPERATIVE.search(sentence)) and not sentence.rstrip().endswith("?")


def is_acknowledgement(sentence: str) -> bool:
    return bool(_ACKNOWLEDGE.search(sentence))


@dataclass(frozen=True)
class AdviceReading:
    advice: bool
    acknowledgement: bool
    advice_before_acknowledgement: bool


def read_reply(text: str) -> AdviceReading:
    acknowledged = advice = advised_first = False
    for s in sentences(text):
        ack, adv = is_acknowledgement(s), is_advice(s)
        acknowledged = acknowledged or ack
        if adv and not advice:
            advice = True
            advised_first = not acknowledged
    return AdviceReading(advice, acknowledged, advised_first)

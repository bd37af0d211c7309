"""Redaction of contact and payment details before a message is kept.

The reply to a turn is written from the message as the person typed it; what the session keeps (and
the store writes) has e-mail addresses, phone numbers, payment card numbers and bank account numbers
(IBAN) replaced by a placeholder such as ``[email]``. ``Reply.safety`` counts what was replaced
(``redacted:email`` ...). Patterns are deliberately conservative: a card number must pass the Luhn
check and a phone number needs at least 9 digits, so dates, amounts and order numbers stay.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d ().-]{7,17}\d(?!\w)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> tuple[str, dict[str, int]]:
    """``text`` with contact and payment details replaced, and how many of each kind were replaced."""
    counts: dict[str, int] = {}

    def sub(pattern, kind, keep=lambda s: True):
        nonlocal text

        def repl(m):
            if not keep(m.group(0)):
                return m.group(0)
            counts[kind] = counts.get(kind, 0) + 1
            return f"[{kind}]"

        text = pattern.sub(repl, text)

    sub(_EMAIL, "email")
    sub(_IBAN, "account_number")
    sub(_CARD, "card_number", lambda s: 13 <= len(re.sub(r"\D", "", s)) <= 19 and _luhn(re.sub(r"\D", "", s)))
    sub(_PHONE, "phone_number", lambda s: 9 <= len(re.sub(r"\D", "", s)) <= 15
        and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s.strip()))
    return text, counts

"""Screen each user message before any model sees it.

Bad input gets a clear ``InvalidInputError`` (empty, too long, not text). Input that can be
answered after cleaning is cleaned, and the cleaning is reported as flags on the ``Reply``:

* ``invalid_utf8_replaced``: bytes that were not UTF-8 (or lone surrogates) became U+FFFD;
* ``control_characters_removed``: terminal escapes, NULs and other control characters;
* ``bidi_controls_removed``: right-to-left overrides that can hide text from a reader;
* ``template_markers_removed``: chat-template markers such as ``<|im_start|>`` that would let a user
  forge a system or assistant turn (a prompt-injection route). Removal repeats until none is left, so
  a marker hidden inside another (``<<|im_start|>|im_start|>``) cannot reassemble itself;
* ``invisible_characters_removed``: zero-width characters, Unicode tag characters (invisible text that
  models still read), variation selectors outside emoji, and other format characters. A message that
  was only invisible characters is refused as empty. The zero-width joiner inside emoji sequences is
  kept.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import InvalidInputError

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# <|im_start|>, <|endoftext|>, <|system|>... and the [INST] / <<SYS>> style of other chat templates.
_TEMPLATE_MARKERS = re.compile(r"<\|[^<>|\n]{0,40}\|>|\[/?INST\]|<</?SYS>>", re.IGNORECASE)
# Zero-width and other invisible format characters (category Cf: soft hyphen, ZWSP, ZWNJ, word joiner,
# BOM, tag characters U+E0000-E007F...), and variation selectors. The bidi controls have their own flag.
_ZWJ = "\u200d"


def _is_invisible(text: str, i: int) -> bool:
    ch = text[i]
    if ch == _ZWJ:  # keep the joiner between two emoji (family, profession sequences)
        return not (0 < i < len(text) - 1 and _is_emoji(text[i - 1]) and _is_emoji(text[i + 1]))
    if "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":  # variation selectors
        return not (i > 0 and (_is_emoji(text[i - 1]) or text[i - 1] in "0123456789#*"))
    return unicodedata.category(ch) == "Cf" and not _BIDI.match(ch)


def _is_emoji(ch: str) -> bool:
    return ord(ch) >= 0x2190 and unicodedata.category(ch) == "So"


def remove_template_markers(text: str) -> tuple[str, int]:
    """``text`` with every chat-template marker removed, repeating until none is left; and how many were."""
    total = 0
    while True:
        text, n = _TEMPLATE_MARKERS.subn("", text)
        if not n:
            return text, total
        total += n


@dataclass(frozen=True)
class ScreenedInput:
    text: str
    flags: tuple[str, ...] = ()


def _is_dropped_control(ch: str) -> bool:
    return ch not in "\n\t" and unicodedata.category(ch) == "Cc"


def screen_input(message: object, max_chars: int) -> ScreenedInput:
    """Return the cleaned message and what was cleaned, or raise ``InvalidInputError``."""
    flags: list[str] = []
    if isinstance(message, (bytes, bytearray, memoryview)):
        raw = bytes(message)
        try:
            message = raw.decode("utf-8")
        except UnicodeDecodeError:
            message = raw.decode("utf-8", errors="replace")
            flags.append("invalid_utf8_replaced")
    if message is None:
        raise InvalidInputError("The message is empty. Type what is on your mind and send it again.")
    if not isinstance(message, str):
        raise InvalidInputError(f"The message must be text, not {type(message).__name__}.")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a broken decoder
        message = message.encode("utf-8", errors="replace").decode("utf-8")
        if "invalid_utf8_replaced" not in flags:
            flags.append("invalid_utf8_replaced")
    # Measure length before cleaning, so a huge hostile paste is refused cheaply.
    if len(message) > max_chars * 4:
        raise InvalidInputError(_too_long(len(message), max_chars))
    text = unicodedata.normalize("NFC", message).replace("\r\n", "\n").replace("\r", "\n")
    cleaned = "".join(ch for ch in text if not _is_dropped_control(ch))
    if cleaned != text:
        flags.append("control_characters_removed")
    text, n = _BIDI.subn("", cleaned)
    if n:
        flags.append("bidi_controls_removed")
    visible = "".join(ch for i, ch in enumerate(text) if not _is_invisible(text, i))
    if visible != text:
        flags.append("invisible_characters_removed")
        text = visible
    text, n = remove_template_markers(text)
    if n:
        flags.append("template_markers_removed")
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text or all(ch == "\ufffd" for ch in text if not ch.isspace()):
        raise InvalidInputError("The message is empty. Type what is on your mind and send it again.")
    if len(text) > max_chars:
        raise InvalidInputError(_too_long(len(text), max_chars))
    return ScreenedInput(text, tuple(flags))


def _too_long(n: int, max_chars: int) -> str:
    return (
        f"The message is {n:,} characters long; the limit is {max_chars:,}. "
        "Please shorten it or send it in parts."
    )

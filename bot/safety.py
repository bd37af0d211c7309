"""Screen each user message before any model sees it.

Bad input gets a clear ``InvalidInputError`` (empty, too long, not text). Input that can be
answered after cleaning is cleaned, and the cleaning is reported as flags on the ``Reply``:

* ``invalid_utf8_replaced``: bytes that were not UTF-8 (or lone surrogates) became U+FFFD;
* ``control_characters_removed``: terminal escapes, NULs and other control characters;
* ``bidi_controls_removed``: right-to-left overrides that can hide text from a reader;
* ``template_markers_removed``: chat-template markers such as ``<|im_start|>`` that would let a user
  forge a system or assistant turn (a prompt-injection route).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import InvalidInputError

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# <|im_start|>, <|endoftext|>, <|system|>... and the [INST] / <<SYS>> style of other chat templates.
_TEMPLATE_MARKERS = re.compile(r"<\|[^<>|\n]{0,40}\|>|\[/?INST\]|<</?SYS>>", re.IGNORECASE)


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
    text, n = _TEMPLATE_MARKERS.subn("", text)
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

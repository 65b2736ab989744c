"""Split a long text into SMS parts of at most 160 UTF-8 bytes, never inside a grapheme."""

from __future__ import annotations

import regex

SMS_MAX_BYTES = 160
MMS_MAX_CHARS = 2048
_GRAPHEME = regex.compile(r"\X")


def utf8_len(text: str) -> int:
    """Return the text's length in UTF-8 bytes, the unit VoIP.ms counts."""
    return len(text.encode("utf-8"))


def split_sms(text: str, limit: int = SMS_MAX_BYTES) -> list[str]:
    """Return parts that join to the text, each at most `limit` bytes, preferring word breaks."""
    if utf8_len(text) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    last_space = -1  # index in `current` just after the last whitespace grapheme
    for grapheme in _graphemes(text, limit):
        width = utf8_len(grapheme)
        if size + width > limit and current:
            if 0 < last_space < len(current):
                parts.append("".join(current[:last_space]))
                current = current[last_space:]
            else:
                parts.append("".join(current))
                current = []
            size = sum(utf8_len(g) for g in current)
            last_space = -1
            if size + width > limit and current:
                # The word carried over and this grapheme still do not fit: cut the word here.
                parts.append("".join(current))
                current, size = [], 0
        current.append(grapheme)
        size += width
        if grapheme.isspace():
            last_space = len(current)
    if current:
        parts.append("".join(current))
    return parts


def _graphemes(text: str, limit: int) -> list[str]:
    """Return the graphemes; one longer than a whole part (only in pathological text of many
    combining marks) is cut between code points, as nothing else can carry it."""
    out: list[str] = []
    for grapheme in _GRAPHEME.findall(text):
        if utf8_len(grapheme) <= limit:
            out.append(grapheme)
        else:
            out.extend(grapheme)
    return out

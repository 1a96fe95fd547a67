"""Stream the items of one top-level JSON array, one at a time, in bounded memory.

The reader accepts what JSON Lines sources accept: standard JSON plus the NaN, Infinity
and -Infinity tokens that Python's json and pandas write (a PPL list holding NaN is a
common export). Each item is decoded by the standard library's C decoder
(`JSONDecoder.raw_decode`); the file is read in chunks, and an item that a chunk cuts
short is decoded again once more text has arrived (the read size doubles each time, so
a long item costs a few passes, not one per chunk).

Bytes that are not UTF-8 end the array at the item that holds them (NotUTF8): the items
before it are yielded. Decoding stays strict and fast until the first such byte; from
there on the rest of the file is decoded with each bad byte kept as a lone surrogate
(Python's surrogateescape), which is how the item holding it is found.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

CHUNK_CHARS = 1 << 20
# A token cut at the buffer's end shows up as an error (or an item's end) at most this far
# before it: the longest literal is -Infinity; a cut number or string ends at the end.
_LONGEST_CUT = len("-Infinity") + 1
_WHITESPACE = " \t\n\r"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape keeps it


class MalformedJSON(ValueError):
    """The array is not valid JSON at `position` (characters from the start of the file)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message}: character {position:,}")
        self.position = position


class NotUTF8(UnicodeDecodeError):
    """A byte that is not UTF-8 in the item at `position` (characters from the start of the file)."""

    def __init__(self, byte: int, position: int) -> None:
        super().__init__("utf-8", bytes([byte]), 0, 1, "not UTF-8")
        self.position = position

    def __str__(self) -> str:
        return f"byte 0x{self.object[0]:02x} is not UTF-8, in the item at character {self.position:,}"


class _Text:
    """The file's text from `start` on, decoded as UTF-8 chunk by chunk."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buffer = ""
        self.start = 0  # characters of the file before self.buffer[0]
        self.eof = False
        self.lossy = False  # a byte that is not UTF-8 was read: from there on, bytes are kept as surrogates

    def read_more(self, chars: int) -> bool:
        """Append at least `chars` more characters if the file has them; False at the end."""
        if self.eof:
            return False
        parts, got = [], 0
        while got < chars:
            raw = self.handle.read(max(chars, CHUNK_CHARS))
            try:
                text = self.decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:  # exc.object: the bytes held back from the last chunk, then raw
                self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
                self.lossy = True
                text = self.decoder.decode(exc.object, final=not raw)
            parts.append(text)
            got += len(text)
            if not raw:
                self.eof = True
                break
        self.buffer += "".join(parts)
        return got > 0 or not self.eof

    def drop_before(self, pos: int) -> int:
        """Forget the text before buffer position `pos`; returns the new position (0)."""
        self.buffer = self.buffer[pos:]
        self.start += pos
        return 0

    def refuse_bytes(self, start: int, end: int) -> None:
        """Raise NotUTF8 if the buffer holds a byte that is not UTF-8 between `start` and `end`."""
        if self.lossy and (found := _ESCAPED_BYTE.search(self.buffer, start, end)):
            raise NotUTF8(ord(found.group()) - 0xDC00, self.start + start)

    def next_char(self, pos: int) -> tuple[str, int]:
        """The first non-whitespace character at or after `pos` ('' at the end) and its position."""
        while True:
            while pos < len(self.buffer) and self.buffer[pos] in _WHITESPACE:
                pos += 1
            if pos < len(self.buffer):
                return self.buffer[pos], pos
            pos = self.drop_before(pos)
            if not self.read_more(CHUNK_CHARS):
                return "", pos


def _cut_short(error: json.JSONDecodeError, buffer: str) -> bool:
    """Whether a decode error may only mean that the item continues past the buffer."""
    return error.msg.startswith("Unterminated string") or error.pos >= len(buffer) - _LONGEST_CUT


def iter_json_array(handle: BinaryIO) -> Iterator[object]:
    """Yield the items of the JSON array in `handle` (binary, positioned at the `[`).

    Raises MalformedJSON where the text stops being a JSON array; the items before it
    have been yielded. UnicodeDecodeError for bytes that are not UTF-8.
    """
    for item, _ in sized_json_array(handle):
        yield item


def sized_json_array(handle: BinaryIO) -> Iterator[tuple[object, int]]:
    """`iter_json_array`, each item with the characters of its text: what a reader that
    batches by size (R1 responses run to 200 KB) counts."""
    decoder = json.JSONDecoder()  # parses NaN, Infinity and -Infinity as floats
    text = _Text(handle)
    char, pos = text.next_char(0)
    if char != "[":
        raise MalformedJSON("expected '[' to open the array", text.start + pos)
    char, pos = text.next_char(pos + 1)
    if char == "]":
        return
    while True:
        want = CHUNK_CHARS
        while True:
            try:
                item, end = decoder.raw_decode(text.buffer, pos)
            except json.JSONDecodeError as exc:
                if _cut_short(exc, text.buffer) and not text.eof:
                    pos = text.drop_before(pos)
                    text.read_more(want)
                    want *= 2
                    continue
                text.refuse_bytes(pos, exc.pos + 1)
                raise MalformedJSON(exc.msg, text.start + exc.pos) from None
            if end > len(text.buffer) - _LONGEST_CUT and not text.eof:  # a number may go on (1 of 1.5)
                pos = text.drop_before(pos)
                text.read_more(want)
                continue
            break
        text.refuse_bytes(pos, end)
        yield item, end - pos
        char, pos = text.next_char(end)
        if char == "]":
            return
        if char == "":
            raise MalformedJSON("the file ends before the array is closed", text.start + pos)
        if char != ",":
            raise MalformedJSON("expected ',' or ']' after an array item", text.start + pos)
        char, pos = text.next_char(pos + 1)
        if char == "":
            raise MalformedJSON("the array ends after a ','", text.start + pos)

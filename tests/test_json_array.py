"""The streaming JSON-array reader: the same items as json.loads, in bounded chunks,
with NaN/Infinity and integers of any size, and errors that say where the text broke."""

import io
import json
import math
import random

import pytest

import curate.ingest.json_array as json_array
from curate.ingest.json_array import MalformedJSON, iter_json_array


def items_of(data: bytes) -> list:
    return list(iter_json_array(io.BytesIO(data)))


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_items_equal_json_loads_across_chunk_boundaries(monkeypatch, chunk):
    monkeypatch.setattr(json_array, "CHUNK_CHARS", chunk)
    rng = random.Random(chunk)
    rows = [
        {
            "problem": 'é∑ "quoted" \\ ' * rng.randrange(4),
            "responses": ["<think>" + "x" * rng.randrange(50) + "</think>" for _ in range(rng.randrange(3))],
            "ppl": [rng.random() + 1, math.inf, -math.inf],
            "n": rng.randrange(10**25),  # beyond 64 bits
            "nested": [[], {}, None, True, False, -0.0, 1e-300],
        }
        for _ in range(40)
    ]
    text = json.dumps(rows, indent=rng.choice([None, 2]))
    assert items_of(text.encode()) == json.loads(text)
    nan = items_of(b' [ {"ppl": [NaN, 1.5]} ,\n 12345, 1.5e-3, -Infinity ] ')
    assert math.isnan(nan[0]["ppl"][0]) and nan[0]["ppl"][1] == 1.5 and nan[1:] == [12345, 1.5e-3, -math.inf]


@pytest.mark.parametrize(
    ("data", "message", "position", "before"),
    [
        (b"[]", None, None, []),
        (b'[{"a": 1},]', "Expecting value", 10, [{"a": 1}]),
        (b'[{"a": 1} {"b": 2}]', "expected ',' or ']' after an array item", 10, [{"a": 1}]),
        (b'[{"a": 1}, {"b": 2', "Expecting ',' delimiter", 18, [{"a": 1}]),
        (b'[{"a": 1}', "the file ends before the array is closed", 9, [{"a": 1}]),
        (b'[1, "no end]', "Unterminated string", 4, [1]),
        (b"[1,", "the array ends after a ','", 3, [1]),
        (b'{"a": 1}', "expected '\\[' to open the array", 0, []),
    ],
)
def test_malformed_arrays_keep_the_items_before_the_break(data, message, position, before):
    got = []
    if message is None:
        got.extend(iter_json_array(io.BytesIO(data)))
    else:
        with pytest.raises(MalformedJSON, match=message) as err:
            for item in iter_json_array(io.BytesIO(data)):
                got.append(item)
        assert err.value.position == position
    assert got == before


def test_bytes_that_are_not_utf8_raise():
    with pytest.raises(UnicodeDecodeError):
        items_of(b'[{"a": "\xff"}]')

"""Token n-grams of problems and responses, and the index of a benchmark's n-grams.

Texts are compared after oxa's own normalization (`match_text`, curate/text/normalize.py:
NFKC, look-alike characters, LaTeX spacing and sizing, \\dfrac/\\tfrac, `x^{2}`, math
delimiters dropped, lower case), so `$\\dfrac{1}{2}$`, `\\(\\frac12\\)` and a line break
in the middle of a sentence are all the same text. A text is then cut into tokens: a
LaTeX command (`\\frac`), a word, a number, or any other single character, so an
expression such as `x^2+3x` is six tokens and changing one of them changes the n-grams
around it.

The index is built on *masked* tokens, every number read as `#`: a copy and a
numbers-changed template of a benchmark problem then share their n-grams alike, and
curate/decontaminate/matching.py tells them apart by the numbers and expressions. The
pool side is vectorized: each masked token hashed to 64 bits (Polars), an n-gram's hash
the polynomial of its `n` token hashes (numpy, modulo 2^64: no n-gram is built as a
string), joined with the benchmarks' hashes by position, so the coverage of every pair
(the share of the benchmark problem's tokens inside a shared n-gram) is counted there;
only the pairs that reach `min_coverage` leave this module, for matching.py to check on
the tokens themselves. A hash collision can only add a pair to check, never lose one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from curate.text.normalize import match_text

TOKEN = r"\\[a-z]+|[a-z]+|[0-9]+|[^\sa-z0-9]"
NUMBER = r"[0-9]+"
MASK = "#"
_HASH_SEED = 0x0A7A


# match_text unbraces one character after ^ and _ (`x^{2}` is `x^2`); a number is one
# token here, so `10^{13}` is `10^13` too, and an exponent that grows a digit stays a template
_BRACED_NUMBER = r"([\^_])\{([0-9]+)\}"


def _token_text(text):
    return match_text(text).str.replace_all(_BRACED_NUMBER, "$1$2")


def tokens_expr(text):
    """Polars expression: the unmasked tokens (list of strings) of a problem's text."""
    return _token_text(text).str.extract_all(TOKEN)


def masked_tokens_expr(text):
    """Polars expression: the masked tokens of a text, as masked(tokens_expr(text)) gives
    them, without the unmasked list (a number is a token of its own either way, and MASK
    is one character: a token of its own too)."""
    return _token_text(text).str.replace_all(NUMBER, MASK, literal=False).str.extract_all(TOKEN)


def masked(tokens):
    """Polars expression: a token list with every number replaced by MASK."""
    import polars as pl

    return tokens.list.eval(
        pl.when(pl.element().str.contains(f"^{NUMBER}$")).then(pl.lit(MASK)).otherwise(pl.element())
    )


def tokenize(texts: list[str]) -> list[list[str]]:
    """The unmasked tokens of each text (for the few texts a caller holds in Python)."""
    import polars as pl

    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    return frame.select(tokens_expr(pl.col("t")).alias("tokens"))["tokens"].to_list()


_GRAM_MULTIPLIER = 0x9E3779B97F4A7C15  # odd: each token's place in the n-gram weighs differently


def token_hashes(frame):
    """(row, pos, length, h) of every masked token of the rows of `frame` (columns row:
    int, masked: list[str]), in row then position order: the input of `grams`."""
    import polars as pl

    return (
        frame.select(
            pl.col("row").cast(pl.Int64),
            pl.col("masked").list.eval(pl.element().hash(_HASH_SEED)).alias("h"),
            pl.col("masked").list.len().cast(pl.Int64).alias("length"),
        )
        .filter(pl.col("length") > 0)
        .with_columns(pl.int_ranges(0, pl.col("length")).alias("pos"))
        .explode("h", "pos")
    )


def grams(tokens, size: int):
    """(row, pos, hash) of every n-gram of `size` tokens, one per position that starts
    one, from `token_hashes`: hash = sum over k < size of h[pos + k] * M^k, modulo 2^64."""
    import numpy as np
    import polars as pl

    h = tokens["h"].to_numpy()
    gram = h.copy()
    weight = 1
    for k in range(1, min(size, len(h))):  # numpy's uint64 arithmetic wraps: modulo 2^64
        weight = weight * _GRAM_MULTIPLIER % 2**64
        gram[: len(h) - k] += h[k:] * np.uint64(weight)
    # a position whose n-gram would run past its row's end starts none (its sum read the next row)
    starts = (tokens["pos"] + size <= tokens["length"]).to_numpy()
    return pl.DataFrame(
        {"row": tokens["row"].to_numpy()[starts], "pos": tokens["pos"].to_numpy()[starts], "hash": gram[starts]},
        schema={"row": pl.Int64, "pos": pl.Int64, "hash": pl.UInt64},
    )


def ngram_rows(frame, size: int):
    """(row, pos, hash) of every n-gram of `size` masked tokens, one per position, of the
    rows of `frame` (columns row: int, masked: list[str]); a row shorter than `size` has none."""
    return grams(token_hashes(frame), size)


@dataclass
class BenchmarkIndex:
    """The masked n-grams of every benchmark problem, by position."""

    tokens: list[list[str]]  # unmasked tokens per benchmark problem
    sizes: list[int]  # each problem's n: the configured n, or its length when shorter
    entries: object  # polars DataFrame: bench, pos, hash, size (one row per position)
    min_coverage: float

    @classmethod
    def build(cls, texts: list[str], n: int, min_coverage: float) -> BenchmarkIndex:
        import polars as pl

        frame = pl.DataFrame({"t": texts}, schema={"t": pl.String}).with_row_index("row", 0)
        frame = frame.with_columns(tokens_expr(pl.col("t")).alias("tokens")).with_columns(
            masked(pl.col("tokens")).alias("masked")
        )
        tokens = frame["tokens"].to_list()
        sizes = [min(n, len(t)) for t in tokens]
        entries = [
            ngram_rows(frame.filter(pl.col("row").is_in([i for i, s in enumerate(sizes) if s == size])), size)
            .with_columns(pl.lit(size, pl.Int32).alias("size"))
            .rename({"row": "bench"})
            for size in sorted(set(sizes) - {0})
        ]
        schema = {"bench": pl.Int64, "pos": pl.Int64, "hash": pl.UInt64, "size": pl.Int32}
        return cls(tokens, sizes, pl.concat(entries) if entries else pl.DataFrame(schema=schema), min_coverage)

    def candidates(self, frame) -> pa.Table:
        """(row, bench, shared_ngrams) of the pairs of `frame`'s rows (row, masked) and
        benchmark problems whose shared n-grams cover at least min_coverage of the
        benchmark problem's tokens (by 64-bit hashes: matching.classify checks the tokens)."""
        import polars as pl

        problems = pl.DataFrame(
            {
                "bench": range(len(self.tokens)),
                "length": [len(t) for t in self.tokens],
                # no pair can cover min_coverage of the tokens with fewer positions (n tokens each)
                "needed": [max(1, math.ceil(self.min_coverage * len(t) / s - 1e-9)) if s else 0 for t, s in zip(self.tokens, self.sizes)],
            },
            schema={"bench": pl.Int64, "length": pl.Int64, "needed": pl.Int64},
        )  # fmt: skip
        found = []
        tokens = token_hashes(frame)  # once for every size
        for size in self.entries["size"].unique().sort().to_list():
            entries = self.entries.filter(pl.col("size") == size).select("hash", "bench", "pos", "size")
            held = grams(tokens, size).select("row", "hash").filter(pl.col("hash").is_in(entries["hash"].implode()))
            found.append(held.unique().join(entries, on="hash"))  # (row, hash, bench, pos, size)
        if not found:
            return pa.table({n: pa.array([], pa.int64()) for n in ("row", "bench", "shared_ngrams")})
        shared = pl.concat(found)
        pairs = (
            shared.group_by("row", "bench")
            .agg(pl.col("hash").n_unique().alias("shared_ngrams"), pl.col("pos").n_unique().alias("positions"))
            .join(problems, on="bench")
            .filter(pl.col("positions") >= pl.col("needed"))
        )
        covered = (
            shared.join(pairs.select("row", "bench"), on=["row", "bench"], how="semi")
            .with_columns(pl.int_ranges(pl.col("pos"), pl.col("pos") + pl.col("size")).alias("token"))
            .explode("token")
            .group_by("row", "bench")
            .agg(pl.col("token").n_unique().alias("covered"))
        )
        return (
            pairs.join(covered, on=["row", "bench"])
            .filter(pl.col("covered") / pl.col("length") >= self.min_coverage)
            .select("row", "bench", pl.col("shared_ngrams").cast(pl.Int64))
            .sort("row", "bench")
            .to_arrow()
        )

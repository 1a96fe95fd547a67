"""The synthetic world (curate.synth): its files say exactly what its manifest says."""

import json
import re
import unicodedata
from collections import Counter

import pyarrow.parquet as pq
import pytest
from math_verify import parse, verify
from rapidfuzz import fuzz, process
from typer.testing import CliRunner

from curate.cli import app
from curate.decontaminate import DecontaminateConfig, run_decontaminate
from curate.ingest import IngestConfig, run_ingest
from curate.synth.families import RICH
from curate.synth.leaks import COPY_KINDS, INSTRUCTIONS
from curate.synth.mix import exact_counts
from curate.synth.references import loose
from curate.synth.styles import VOICES
from curate.synth.world import WorldConfig, build_world, load_manifest
from curate.text.instructions import KNOWN_SUFFIXES
from curate.workspace import OxaError
from tests.conftest import SMALL_WORLD, naive_problem_id, naive_sample_id, query

# The first words of each style's reasoning (responses are cut no earlier than 30% in).
STYLE_OPENERS = {
    "concise": ("We need to", "The task is to", "Goal: we want to", "Here we have to"),
    "chatty": ("Okay, so", "Alright, so", "Okay, let's see."),
    "formal": ("Let us", "We shall", "Our aim is to"),
    "socratic": ("What is being asked?", "What is the question?", "What do we need?"),
}


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...}, braces balanced; written plainly, as a reference."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def strong_normalize(text: str) -> str:
    """What a tracer's stronger normalization undoes: LaTeX spacing, \\left/\\right,
    \\dfrac, compatibility characters, an instruction suffix, whitespace."""
    text = unicodedata.normalize("NFKC", text)
    for suffix in KNOWN_SUFFIXES:
        text = text.replace(suffix, "")
    for old, new in (("\\,", ""), ("\\left(", "("), ("\\right)", ")"), ("\\dfrac", "\\frac")):
        text = text.replace(old, new)
    return " ".join(text.split())


def pool_rows(world) -> list[dict]:
    return [json.loads(line) for line in (world / "pool" / "teacher.jsonl").read_text().splitlines()]


def tally(values) -> dict:
    return dict(sorted(Counter(values).items()))


def test_pool_is_what_the_manifest_says(synth_world):
    manifest, rows = load_manifest(synth_world), pool_rows(synth_world)
    samples, counts = manifest["samples"], manifest["counts"]
    gold = {p["problem_id"]: p["gold"] for p in manifest["problems"]}
    assert len(rows) == counts["pool_rows"] == len(samples) + SMALL_WORLD.non_math_rows
    assert [i for i, r in enumerate(rows) if r["category"] == "code"] == manifest["non_math_rows"]
    for s in samples:
        row = rows[s["row"]]
        text = row["output"]
        assert row["category"] == "math"
        assert (s["problem_id"], s["sample_id"]) == (
            naive_problem_id(row["input"]),
            naive_sample_id(row["input"], text),
        )
        assert text.startswith("<think>\n") and text[len("<think>\n") :].startswith(STYLE_OPENERS[s["style"]])
        assert ("</think>" in text) == s["think_closed"] == (s["flaw"] not in ("missing_think_close", "truncated"))
        assert last_boxed(text) == s["boxed"]
        if s["flaw"] in ("none", "missing_think_close"):
            assert s["boxed"] == gold[s["problem_id"]]
        elif s["flaw"] in ("wrong_answer", "equivalent_form"):
            assert s["boxed"] not in (None, gold[s["problem_id"]])
        else:  # missing_box, truncated
            assert "\\boxed" not in text
    per_problem = Counter(s["problem_id"] for s in samples)
    assert sorted(per_problem) == sorted(gold)
    assert all(SMALL_WORLD.min_responses <= n <= SMALL_WORLD.max_responses for n in per_problem.values())
    assert len({(s["problem_id"], rows[s["row"]]["output"]) for s in samples}) == len(samples)

    # the manifest's counts are the tallies of its records, and the flaws come in exact shares
    families = SMALL_WORLD.families
    assert counts["problems"]["by_family"] == {f: SMALL_WORLD.problems // len(families) for f in sorted(families)}
    assert counts["samples"]["by_family"] == tally(s["family"] for s in samples)
    assert counts["samples"]["by_style"] == tally(s["style"] for s in samples)
    assert counts["samples"]["by_family_style"] == {
        f: tally(s["style"] for s in samples if s["family"] == f) for f in families
    }
    assert counts["samples"]["by_flaw"] == tally(s["flaw"] for s in samples)
    expected = exact_counts(len(samples), SMALL_WORLD.flaw_shares)
    assert counts["samples"]["by_flaw"] == {k: n for k, n in sorted(expected.items()) if n}
    assert set(counts["samples"]["by_style"]) == set(manifest["styles"]) == set(STYLE_OPENERS)


def test_boxed_answers_verify_as_their_flaw_says(synth_world):
    manifest = load_manifest(synth_world)
    gold = {p["problem_id"]: p["gold"] for p in manifest["problems"]}
    forms = Counter()
    for s in manifest["samples"]:
        if s["flaw"] in ("equivalent_form", "wrong_answer"):
            same = verify(parse(f"${gold[s['problem_id']]}$"), parse(f"${s['boxed']}$"))
            assert same == (s["flaw"] == "equivalent_form"), (gold[s["problem_id"]], s)
            forms[s["flaw"]] += 1
    assert forms["equivalent_form"] > 0 and forms["wrong_answer"] > 0
    # the gold answers take every form the families promise
    golds = [p["gold"] for p in manifest["problems"]]
    for pattern in (r"^-\d+$", r"^\d+$", r"\\frac\{", r"^\d+\.\d+$", r"\\sqrt\{", r"^\(.*, .*\)$"):
        assert any(re.search(pattern, g) for g in golds), pattern


def test_references_hold_what_tracing_should_find(synth_world):
    manifest, rows = load_manifest(synth_world), pool_rows(synth_world)
    tables = {
        name: pq.read_table(synth_world / "references" / f"{name}.parquet").to_pylist()
        for name in ("numina15", "numina_cot")
    }
    assert list(tables["numina15"][0]) == [
        "problem",
        "solution",
        "answer",
        "problem_type",
        "question_type",
        "source",
        "synthetic",
    ]
    assert list(tables["numina_cot"][0]) == ["source", "problem", "solution", "messages"]
    text_of = {s["problem_id"]: rows[s["row"]]["input"] for s in manifest["samples"]}
    owned = set()
    for p in manifest["problems"]:
        trace, text = p["trace"], text_of[p["problem_id"]]
        answers = []
        for hit in trace["rows"]:
            ref = tables[hit["file"]][hit["row"]]
            owned.add((hit["file"], hit["row"]))
            found = ref["answer"] if hit["file"] == "numina15" else last_boxed(ref["solution"]) or ""
            assert found == hit["answer"]
            answers.append(found)
            same_id = naive_problem_id(ref["problem"]) == p["problem_id"]
            if trace["case"] in ("exact", "agree", "conflict", "placeholder"):
                assert same_id
            elif trace["case"] == "normalized":
                assert not same_id and strong_normalize(ref["problem"]) == strong_normalize(text), trace
            else:
                assert trace["case"] == "fuzzy" and strong_normalize(ref["problem"]) != strong_normalize(text)
                assert fuzz.ratio(loose(ref["problem"]), loose(text)) >= manifest["fuzzy"]["fuzzy_at_least"]
        expected_rows = {"missing": 0, "agree": 2, "conflict": 2}.get(trace["case"], 1)
        assert len(trace["rows"]) == expected_rows
        if trace["case"] in ("exact", "normalized", "fuzzy", "agree"):
            assert trace["gold"] == p["gold"] and set(answers) == {p["gold"]}
            assert trace["method"] == ("exact" if trace["case"] == "agree" else trace["case"])
        elif trace["case"] == "conflict":
            assert trace["gold"] is None and p["gold"] in answers and len(set(answers)) == 2
        elif trace["case"] == "placeholder":
            assert answers[0] in {"proof", "notfound", ""}
    counts = manifest["counts"]["traces"]["by_case"]
    assert counts == {
        k: n for k, n in sorted(exact_counts(SMALL_WORLD.problems, SMALL_WORLD.trace_shares).items()) if n
    }
    assert sum(len(t) for t in tables.values()) - len(owned) == SMALL_WORLD.reference_only

    # fuzzy matching has a clean band: a reference row of another problem never scores
    # as high against a pool problem as a fuzzy drift scores against its own
    for p in manifest["problems"]:
        mine = {(h["file"], h["row"]) for h in p["trace"]["rows"]}
        others = [loose(r["problem"]) for f, t in tables.items() for i, r in enumerate(t) if (f, i) not in mine]
        best = process.extractOne(loose(text_of[p["problem_id"]]), others, scorer=fuzz.ratio)
        assert best[1] < manifest["fuzzy"]["distinct_below"], (p, best)


def test_pool_and_heldout_ingest(synth_world, ws):
    manifest = load_manifest(synth_world)
    stats = run_ingest(ws, IngestConfig([str(synth_world / "pool" / "teacher.jsonl")], preset="acereason"))
    n = len(manifest["samples"])
    assert stats["funnel"] == {
        "read": n + SMALL_WORLD.non_math_rows,
        "accepted": n,
        "duplicate": 0,
        "rejected": 0,
        "filtered": SMALL_WORLD.non_math_rows,
    }
    assert query(ws, "SELECT sample_id FROM samples ORDER BY 1") == sorted(
        (s["sample_id"],) for s in manifest["samples"]
    )
    assert query(ws, "SELECT problem_id FROM problems ORDER BY 1") == sorted(
        (p["problem_id"],) for p in manifest["problems"]
    )
    stats = run_ingest(ws, IngestConfig([str(synth_world / "heldout.json")], preset="benchmark"))
    assert stats["added"]["problems"] == stats["added"]["answers"] == SMALL_WORLD.heldout


def test_same_seed_gives_the_same_bytes(tmp_path):
    config = WorldConfig(problems=16, heldout=4, reference_only=8, corpus_problems=8, leaked=2, leaked_variants=1)
    build_world(tmp_path / "a", config)
    build_world(tmp_path / "b", config)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [str(f) for f in files] == [
        "corpus.jsonl",
        "heldout.json",
        "manifest.json",
        "pool/teacher.jsonl",
        "references/numina15.parquet",
        "references/numina_cot.parquet",
    ]
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    build_world(tmp_path / "a", WorldConfig(seed=1, problems=16, heldout=4, reference_only=8, corpus_problems=8))
    assert (tmp_path / "a" / "pool" / "teacher.jsonl").read_bytes() != (
        tmp_path / "b" / "pool" / "teacher.jsonl"
    ).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(OxaError, match="unknown flaw kind"):
        build_world(tmp_path / "w", WorldConfig(flaw_shares={"typos": 0.1}))
    with pytest.raises(OxaError, match="1 <= min <= max; got 5..2"):
        build_world(tmp_path / "w", WorldConfig(min_responses=5, max_responses=2))
    with pytest.raises(OxaError, match=r"add up to at most the held-out problems \(4\)"):
        build_world(tmp_path / "w", WorldConfig(heldout=4, leaked=3, leaked_variants=2))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("mine")
    with pytest.raises(OxaError, match="not empty and holds no synthetic world"):
        build_world(tmp_path / "data", WorldConfig(problems=8))
    assert (tmp_path / "data" / "keep.txt").read_text() == "mine"
    with pytest.raises(OxaError, match="no synthetic world"):
        load_manifest(tmp_path / "data")


def test_cli_writes_a_world(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "world",
            str(tmp_path / "w"),
            "--problems",
            "8",
            "--corpus-problems",
            "8",
            "--flaw",
            "wrong_answer=1",
            "--leaked",
            "1",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    manifest = load_manifest(tmp_path / "w")
    assert manifest["config"]["problems"] == 8 and manifest["config"]["flaw_shares"]["wrong_answer"] == 1.0
    assert manifest["counts"]["leaks"] == {"by_kind": {"verbatim": 1}, "by_method": {"exact": 1}}
    assert "planted in the pool: verbatim" in result.output
    assert "oxa ingest WS" in result.output


# -- held-out problems planted in the pool (curate/synth/leaks.py) ------------------------

LEAKY = {"problems": 60, "heldout": 12, "reference_only": 8, "corpus_problems": 8, "leaked": 4, "leaked_variants": 3}


def numbers(text: str) -> Counter:
    return Counter(re.findall(r"\d+", text))


@pytest.mark.parametrize("wordy", [False, True], ids=["drills", "wordy"])
def test_planted_problems_are_in_the_pool_as_the_manifest_says(tmp_path, wordy):
    """Copies of held-out problems and numbers-changed variants of others, each with
    flawless responses and a reference answer, added to the world without changing the rest."""
    families = {"families": list(RICH), "styles": list(VOICES)} if wordy else {}
    manifest = build_world(tmp_path / "leaky", WorldConfig(**LEAKY, **families))
    build_world(tmp_path / "clean", WorldConfig(**{**LEAKY, "leaked": 0, "leaked_variants": 0}, **families))
    rows, heldout = pool_rows(tmp_path / "leaky"), json.loads((tmp_path / "leaky" / "heldout.json").read_text())
    assert manifest["counts"]["leaks"] == {
        "by_kind": {"formatting": 1, "instruction": 1, "numbers": 3, "verbatim": 2},
        "by_method": {"contained": 1, "exact": 3, "template": 3},
    }
    assert manifest["counts"]["problems"]["pool"] == len(manifest["problems"]) == 60 + 4 + 3
    planted = [p for p in manifest["problems"] if "leak" in p]
    assert [p["leak"]["kind"] for p in planted] == [*COPY_KINDS, "verbatim", "numbers", "numbers", "numbers"]
    assert len({p["leak"]["heldout"] for p in planted}) == 7  # seven held-out problems, each planted once
    text_of = {s["problem_id"]: rows[s["row"]]["input"] for s in manifest["samples"]}
    for p in planted:
        leak, text = p["leak"], text_of[p["problem_id"]]
        original = heldout[leak["heldout"]]
        assert p["family"] == original["family"]
        if leak["kind"] == "verbatim":
            assert text == original["problem"] and p["gold"] == original["answer"]
        elif leak["kind"] == "formatting":  # whitespace, or characters NFKC maps back
            assert text != original["problem"] and p["gold"] == original["answer"]
            assert " ".join(unicodedata.normalize("NFKC", text).split()) == original["problem"]
            assert leak["drift"] in ("whitespace", "unicode")
        elif leak["kind"] == "instruction":
            instruction, _, rest = text.partition("\n\n")
            assert instruction in INSTRUCTIONS and rest == original["problem"] and p["gold"] == original["answer"]
        else:  # the same words, not all of the numbers: a template, with its own answer
            assert re.sub(r"\d+", "#", text) == re.sub(r"\d+", "#", original["problem"])
            assert numbers(original["problem"]) - numbers(text)
        # flawless responses, traced like any exact case: they verify as correct
        samples = [s for s in manifest["samples"] if s["problem_id"] == p["problem_id"]]
        assert len(samples) >= WorldConfig().min_responses and {s["flaw"] for s in samples} == {"none"}
        assert {s["boxed"] for s in samples} == {p["gold"]}
        assert p["trace"]["case"] == "exact" and p["trace"]["gold"] == p["gold"] and len(p["trace"]["rows"]) == 1

    # the rest of the world is the world without them
    clean = load_manifest(tmp_path / "clean")
    for name in ("heldout.json", "corpus.jsonl"):
        assert (tmp_path / "leaky" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    ours = Counter(
        (r["input"], r["output"]) for r in rows if r["input"] not in {text_of[p["problem_id"]] for p in planted}
    )
    assert ours == Counter((r["input"], r["output"]) for r in pool_rows(tmp_path / "clean"))
    unplanted = [{k: v for k, v in p.items() if k != "trace"} for p in manifest["problems"] if "leak" not in p]
    assert unplanted == [{k: v for k, v in p.items() if k != "trace"} for p in clean["problems"]]
    assert [p["trace"]["case"] for p in manifest["problems"] if "leak" not in p] == [
        p["trace"]["case"] for p in clean["problems"]
    ]


@pytest.mark.parametrize("wordy", [False, True], ids=["drills", "wordy"])
def test_decontamination_finds_what_was_planted(tmp_path, ws, wordy):
    """The manifest's method for each plant is what `oxa decontaminate` reports against its
    held-out problem, and nothing else in the pool is a copy of a held-out problem."""
    families = {"families": list(RICH), "styles": list(VOICES)} if wordy else {}
    world = tmp_path / "leaky"
    manifest = build_world(world, WorldConfig(**LEAKY, **families))
    run_ingest(ws, IngestConfig([str(world / "pool" / "teacher.jsonl")], preset="acereason"))
    stats = run_decontaminate(ws, DecontaminateConfig(against=[str(world / "heldout.json")]))
    assert stats["contaminated"] == {"problem": 4}
    found = query(ws, "SELECT problem_id, benchmark_problem, method FROM contamination ORDER BY ALL")
    planted = {p["problem_id"]: p["leak"] for p in manifest["problems"] if "leak" in p}
    own = {(pid, leak["heldout"], leak["method"]) for pid, leak in planted.items()}
    assert own <= set(found)
    assert {(pid, bench, method) for pid, bench, method in found if method != "template"} == {
        (pid, bench, method) for pid, bench, method in own if method != "template"
    }

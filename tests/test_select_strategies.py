"""Each strategy's exact ids and funnel on a small inline pool, and bad input: a clear
error or a recorded drop reason, never a silent partial subset."""

import random

import pyarrow.parquet as pq
import pytest

from curate.select import SelectConfig, Selection, load_select_config, sampling
from curate.select.select import load_candidates, run_select, select_candidates
from curate.workspace import OxaError, Workspace
from tests.pools import STRATEGY_POOL, TAG, add_pool, in_memory, problem_id, random_pool, tiebreak

CORRECT = "verdict = 'correct'"


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """(workspace, label -> sample_id) of STRATEGY_POOL."""
    root = tmp_path_factory.mktemp("pool")
    ws = Workspace.init(root / "ws")
    ids = add_pool(ws, root, STRATEGY_POOL)
    return ws, {row["label"]: sid for row, sid in zip(STRATEGY_POOL, ids)}


def select(ws, **fields):
    sel = Selection(**{"scores_tag": TAG, **fields})
    sel.validate()
    con = ws.connect()
    try:
        return select_candidates(load_candidates(ws, con, sel, "selection"), sel)
    finally:
        con.close()


def labels(result, ids):
    by_id = {sid: label for label, sid in ids.items()}
    return [by_id[sid] for sid in result.chosen["sample_id"].to_pylist()]


def test_lowest_ppl(pool):
    ws, ids = pool
    result = select(ws, strategy="lowest_ppl", where=CORRECT, n=3)
    assert labels(result, ids) == ["d", "j", "a"]
    assert result.funnel == {
        "unit": "samples",
        "input": 15,
        "dropped": {
            "filtered_out": 5,
            "contaminated": 0,  # no decontamination run
            "missing_ppl": 1,  # i
            "invalid_ppl": 2,  # g (NaN), h (inf)
            "over_problem_cap": 0,
            "beyond_target": 4,
        },
        "selected": 3,
    }
    four = select(ws, strategy="lowest_ppl", where=CORRECT, n=4)
    assert labels(four, ids) == ["d", "j", "a", "k"]  # b: its problem already has a
    assert four.funnel["dropped"]["over_problem_cap"] == 1
    uncapped = select(ws, strategy="lowest_ppl", where=CORRECT, n=4, max_per_problem=None)
    assert labels(uncapped, ids) == ["d", "j", "a", "b"]


def test_interval_longest_first(pool):
    ws, ids = pool
    result = select(ws, strategy="interval", where=CORRECT, n=3, p_min=2.4, p_max=3.0)
    assert labels(result, ids) == ["k", "b", "j"]  # a (300 tokens) is capped behind b (500)
    assert result.funnel["dropped"] | {"selected": result.funnel["selected"]} == {
        "filtered_out": 5,
        "contaminated": 0,
        "missing_ppl": 1,
        "invalid_ppl": 2,
        "missing_n_tokens": 0,
        "invalid_n_tokens": 0,
        "out_of_range": 3,  # d, e, m
        "over_problem_cap": 1,
        "beyond_target": 0,
        "selected": 3,
    }


def test_long_low_ppl(pool):
    ws, ids = pool
    result = select(ws, strategy="long_low_ppl", where=CORRECT, n=2)
    # lengths 50, 100, 300, 500, 700, 800, 900: the median (lower) is 500
    assert result.details == {"min_n_tokens": 500}
    assert labels(result, ids) == ["b", "k"]
    assert result.funnel["dropped"]["too_short"] == 3


def test_random_is_seeded(pool):
    ws, ids = pool
    candidates = [label for label in "abdeghijkm"]  # correct ones; random needs no PPL
    problem_of = {row["label"]: row["problem"] for row in STRATEGY_POOL}
    for seed in (0, 1, 2):
        walk = sorted(candidates, key=lambda label: (tiebreak(ids[label], seed), ids[label]))
        expected, seen = [], set()
        for label in walk:
            if problem_of[label] not in seen and len(expected) < 3:
                expected.append(label)
                seen.add(problem_of[label])
        result = select(ws, strategy="random", where=CORRECT, n=3, seed=seed)
        assert labels(result, ids) == expected
        assert result.funnel["dropped"]["filtered_out"] == 5
    assert (
        select(ws, strategy="random", where=CORRECT, n=3, seed=7).chosen
        == select(ws, strategy="random", where=CORRECT, n=3, seed=7).chosen
    )


def test_gaussian_on_the_pool_and_redistribute(pool):
    ws, ids = pool
    fields = dict(strategy="gaussian", where=CORRECT, n=4, mu=2.5, sigma=0.25, bin_width=0.5)
    # targets: 2 in [2.0, 2.5) and 2 in [2.5, 3.0); the lower bin holds only j
    with pytest.raises(OxaError, match=r"selected 3 of the target 4; short bins .*\[2, 2.5\) 1/2"):
        select(ws, **fields)
    short = select(ws, **fields, allow_shortfall=True)
    assert labels(short, ids) == ["j", "k", "b"]
    assert short.chosen["ppl_bin"].to_pylist() == [2, 3, 3]
    moved = select(ws, **fields, redistribute=True)
    # bin 3 is exhausted (a is capped); the next nearest with a row is bin 0, with d
    assert labels(moved, ids) == ["d", "j", "k", "b"]


def test_mix_positives_and_negatives(pool, tmp_path):
    ws, ids = pool
    config = SelectConfig(
        name="oxa-full",
        strategy="mix",
        positives=Selection(
            strategy="gaussian", scores_tag=TAG, where=CORRECT, n=4, sigma=0.25, bin_width=0.5, redistribute=True
        ),
        negatives=Selection(
            strategy="lowest_ppl",
            scores_tag=TAG,
            where="verdict = 'incorrect' AND origin = 'self' AND ppl >= 1.2 AND n_tokens <= 25000",
            n=2,
        ),
    )
    stats = run_select(ws, config)
    data = pq.read_table(f"{stats['path']}/data.parquet")
    by_id = {sid: label for label, sid in ids.items()}
    assert [(by_id[s], t) for s, t in zip(data["sample_id"].to_pylist(), data["loss_type"].to_pylist())] == [
        ("d", 0),
        ("j", 0),
        ("k", 0),
        ("b", 0),
        ("f", 1),
        ("c", 1),
    ]
    assert data["origin"].to_pylist()[-2:] == ["self", "self"]
    negatives = stats["parts"][1]["funnel"]
    assert negatives["dropped"]["filtered_out"] == 13  # l: 30,000 tokens; n: PPL 1.10


def test_pass_rate(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    verdicts = {
        "Q1": ["correct"] * 4 + ["incorrect"] * 4,  # 0.5: in
        "Q2": ["correct"] + ["no_answer"] * 7,  # 0.125: out
        "Q3": ["correct"] * 8,  # 1.0: out
        "Q4": ["correct"] * 2 + ["incorrect"] * 2,  # 4 judged < k = 8
        "Q5": ["correct"] * 2 + ["incorrect"] * 8,  # 0.2: in, on the edge
        "Q6": ["correct"] * 6 + ["incorrect"] * 2 + ["timeout"] * 2,  # 0.75 over 8 judged: in
    }
    rows = [
        {"problem": f"{q}: solve it.", "response": f"try {i}", "gold": "1", "origin": "self", "verdict": v}
        for q, vs in verdicts.items()
        for i, v in enumerate(vs)
    ]
    rows.append({"problem": "Q1: solve it.", "response": "teacher", "gold": "1", "verdict": "incorrect"})
    add_pool(ws, tmp_path, rows)
    config = SelectConfig(name="rl", strategy="pass_rate", where="origin = 'self'", n=2, seed=3)
    stats = run_select(ws, config)
    kept = [f"{q}: solve it." for q in ("Q1", "Q5", "Q6")]
    expected = sorted((problem_id(p) for p in kept), key=lambda pid: (tiebreak(pid, 3), pid))[:2]
    data = pq.read_table(f"{stats['path']}/data.parquet")
    assert data["problem_id"].to_pylist() == expected
    rate = {problem_id(p): r for p, r in zip(kept, (0.5, 0.2, 0.75))}
    assert data["pass_rate"].to_pylist() == [rate[pid] for pid in expected]
    funnel = stats["parts"][0]["funnel"]
    assert funnel == {
        "unit": "problems",
        "input": 6,
        "dropped": {"contaminated": 0, "fewer_than_k_samples": 1, "pass_rate_out_of_range": 2, "beyond_target": 1},
        "selected": 2,
    }
    assert stats["parts"][0]["details"]["samples"] == {
        "candidates": 49,
        "filtered_out": 1,
        "contaminated": 0,
        "unjudged": 2,
        "judged": 46,
    }
    with pytest.raises(OxaError, match=r"n = 4 but only 3 problems have a pass rate in \[0.2, 0.8\]"):
        run_select(ws, SelectConfig(name="rl", strategy="pass_rate", where="origin = 'self'", n=4))


# -- bad input -------------------------------------------------------------------------------


def test_bad_rows_are_recorded_by_id(pool):
    ws, ids = pool
    stats = run_select(ws, SelectConfig(name="lp", strategy="lowest_ppl", scores_tag=TAG, where=CORRECT, n=3))
    dropped = pq.read_table(ws.run_dir("select", stats["run_id"]) / "dropped.parquet").to_pylist()
    assert sorted((row["sample_id"], row["reason"]) for row in dropped) == sorted(
        [(ids["g"], "invalid_ppl"), (ids["h"], "invalid_ppl"), (ids["i"], "missing_ppl")]
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"where": "nope = 1"},
            r"(?s)the filter `nope = 1` fails on the candidates view.*\ncolumns you can use: sample_id",
        ),
        ({"where": "verdict = 'maybe'"}, r"no candidates pass the filter `verdict = 'maybe'` \(of 15 candidates\)"),
        ({"n": 8}, r"n = 8 but only 7 candidates are usable \(dropped: filtered_out 5, missing_ppl 1, invalid_ppl 2\)"),
        ({"scores_tag": "other"}, r"no scores for tag 'other'.*tags: base-model"),
    ],
)
def test_bad_selections_fail_and_write_nothing(pool, fields, message):
    ws, _ = pool
    config = SelectConfig(
        **{"name": "bad", "strategy": "lowest_ppl", "scores_tag": TAG, "where": CORRECT, "n": 3, **fields}
    )
    with pytest.raises(OxaError, match=message):
        run_select(ws, config)
    assert not (ws.root / "subsets" / "bad").exists()
    # the newest run (run ids sort by second only, so order by when stats.json was written)
    newest = max((ws.root / "runs" / "select").glob("*/stats.json"), key=lambda p: p.stat().st_mtime_ns)
    failed = newest.read_text()
    assert '"status": "failed"' in failed


def write_config(tmp_path, text, suffix=".toml"):
    path = tmp_path / f"config{suffix}"
    path.write_text(text)
    return path


def test_config_files_overrides_and_aliases(tmp_path):
    toml = write_config(tmp_path, 'name = "s"\nstrategy = "gaussian"\nscores_tag = "m"\nN = 50_000\nd = 1\nmu = 3.0\n')
    config = load_select_config(toml, ["N=1000", "w=0.1", "sigma=0.5", "redistribute=true", "description=x y"])
    assert (config.n, config.bin_width, config.sigma, config.redistribute, config.mu) == (1000, 0.1, 0.5, True, 3.0)
    assert config.description == "x y"
    yaml = write_config(tmp_path, "name: s\nstrategy: random\nn: 10\nmax_per_problem: null\n", ".yaml")
    assert load_select_config(yaml).max_per_problem is None
    assert load_select_config("oxa-mle-qwen2.5-7b").resolved()["mu"] == 3.0
    assert load_select_config("oxa-mle-qwen2.5-1.5b").resolved()["mu"] == 2.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sigma=0"], r"sigma must be > 0 \(the paper uses 0.25\), got 0.0"),
        (["sigma=-1"], r"sigma must be > 0"),
        (["p_min=5", "p_max=5"], r"p_min \(5.0\) must be below p_max \(5.0\)"),
        (["p_min=6"], r"p_min \(6.0\) must be below p_max \(5.0\)"),
        (["w=0"], r"bin_width \(w\) must be > 0"),
        (["mu=nan"], r"mu must be a finite number, got nan"),
        (["N=0"], r"n \(N, the rows to select\) must be a positive integer, got 0"),
        (["N=2.5"], r"n must be int, got '2.5'"),
        (["d=0"], r"max_per_problem \(d\) must be at least 1"),
        (["rounding=round"], r"rounding must be one of floor, largest_remainder, got 'round'"),
        (["fill=zigzag"], r"fill must be one of longest_first, round_robin, got 'zigzag'"),
        (["fill=round_robin", "redistribute=true"], r"redistribute applies to fill 'longest_first' only"),
        (["w=9"], r"bin_width 9.0 is over twice the PPL range \[1.0, 5.0\]: round\(range / w\) gives no bin"),
        (["k=8"], r"'k' does not apply to strategy 'gaussian'; it reads: strategy, where, n"),
        (["colour=red"], r"unknown key 'colour' in config; known keys: strategy"),
        (["strategy=best"], r"strategy must be one of gaussian, lowest_ppl"),
        (["scores_tag=bad tag"], r"invalid score tag 'bad tag'"),
        (["name=../x"], r"invalid subset name '../x'"),
    ],
)
def test_bad_configs(tmp_path, overrides, message):
    path = write_config(tmp_path, 'name = "s"\nstrategy = "gaussian"\nscores_tag = "m"\nN = 100\n')
    with pytest.raises(OxaError, match=message):
        load_select_config(path, overrides)


def test_mix_config_errors(tmp_path):
    path = write_config(
        tmp_path,
        'name = "s"\nstrategy = "mix"\n[positives]\nstrategy = "random"\nn = 1\n[negatives]\nstrategy = "mix"\n',
    )
    with pytest.raises(OxaError, match="negatives: a mix part selects responses; strategy 'mix' cannot be one"):
        load_select_config(path)
    with pytest.raises(OxaError, match="'mu' does not apply to strategy 'mix'"):
        load_select_config(path, ["mu=2"])
    with pytest.raises(OxaError, match=r"strategy 'mix' needs a \[negatives\] table"):
        load_select_config(
            write_config(tmp_path, 'name = "s"\nstrategy = "mix"\n[positives]\nstrategy = "random"\nn = 1\n')
        )


@pytest.mark.parametrize("case", range(12))
def test_orders_match_a_plain_sort_and_scan(case, monkeypatch):
    """lowest_ppl, random and interval on random pools equal sorting everything and
    scanning with the cap, also when the walk extends its prefix a row at a time."""
    rng = random.Random(100 + case)
    if case % 2:
        monkeypatch.setattr(sampling, "_MIN_PREFIX", 1)
    rows = random_pool(rng, size=rng.choice([200, 2000]), problems=rng.choice([10, 300]))
    seed, n, d = rng.randrange(1000), rng.choice([5, 60]), rng.choice([1, 3, None])
    orders = {
        "lowest_ppl": lambda r: (r[2], tiebreak(r[0], seed), r[0]),
        "random": lambda r: (tiebreak(r[0], seed), r[0]),
        "interval": lambda r: (-r[3], tiebreak(r[0], seed), r[0]),
    }
    for strategy, key in orders.items():
        # a PPL below 1 is no PPL (dropped as invalid_ppl) where the strategy reads PPL
        scan = [
            r for r in rows if (strategy != "interval" or 2.0 <= r[2] <= 3.0) and (strategy == "random" or r[2] >= 1)
        ]
        expected, count = [], {}
        for sample_id, problem, _, _ in sorted(scan, key=key):
            if len(expected) < n and (d is None or count.get(problem, 0) < d):
                expected.append(sample_id)
                count[problem] = count.get(problem, 0) + 1
        sel = Selection(strategy=strategy, scores_tag=TAG, n=n, max_per_problem=d, seed=seed, p_min=2.0, p_max=3.0)
        result = select_candidates(in_memory(rows), Selection(**{**sel.__dict__, "allow_shortfall": True}))
        assert result.chosen["sample_id"].to_pylist() == expected, strategy

"""Selection as the authors' released data scripts run it: `fill = "round_robin"` against a
plain re-implementation of make_OXA_MLE_data.py's loop, and the SFT_LP and unlikelihood
presets against the heap selection of make_SFT_LP_data.py and make_ULloss_data.py, row
for row on the same pools."""

import heapq
import json
import math
import random
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.select import Selection, load_select_config, sampling
from curate.select.select import run_select, select_candidates
from curate.workspace import Workspace
from tests.pools import TAG, add_pool, hex_id, in_memory


def released_mle_script(rows, mu, sigma, n, max_per_query, p_min, p_max, w, mark_taken=True):
    """make_OXA_MLE_data.py's binning, targets and sample_with_query_cap, written as the
    script writes them. rows: (sample_id, query, ppl, length) with distinct lengths (the
    script breaks length ties at random). The script does not mark the rows it has taken,
    so its passes k >= 2 append a query's longest row of the bin again; `mark_taken`
    skips a taken row instead, as oxa does (each row at most once)."""
    num_bins = int(round((p_max - p_min) / w))
    pdf = [
        (1.0 / (sigma * math.sqrt(2 * math.pi))) * math.exp(-0.5 * (((p_min + (i + 0.5) * w) - mu) / sigma) ** 2)
        for i in range(num_bins)
    ]
    total_pdf = sum(pdf)
    desired = [p / total_pdf * n for p in pdf]
    targets = [int(math.floor(d)) for d in desired]
    fractions = sorted([(d - math.floor(d), i) for i, d in enumerate(desired)], key=lambda x: x[0], reverse=True)
    for i in range(n - sum(targets)):
        targets[fractions[i][1]] += 1
    bin_to_items = defaultdict(list)
    for row in rows:
        ppl = row[2]
        if ppl < p_min or ppl > p_max:
            continue
        idx = min(int((ppl - p_min) / w + 1e-9), num_bins - 1)
        bin_to_items[idx].append(row)
    per_query_counts = defaultdict(int)
    selected = []
    for bin_index in range(num_bins):
        target = targets[bin_index]
        if target <= 0:
            continue
        items_sorted = sorted(bin_to_items[bin_index], key=lambda r: r[3], reverse=True)
        taken, taken_ids, local_counts = [], set(), defaultdict(int)
        for local_cap in range(1, max_per_query + 1):
            if len(taken) >= target:
                break
            for sample_id, query, _, _ in items_sorted:
                if len(taken) >= target:
                    break
                if mark_taken and sample_id in taken_ids:
                    continue
                if per_query_counts[query] >= max_per_query:
                    continue
                if local_counts[query] >= local_cap:
                    continue
                per_query_counts[query] += 1
                local_counts[query] += 1
                taken.append(sample_id)
                taken_ids.add(sample_id)
        selected.extend(taken)
    return selected, targets


def round_robin(**fields) -> Selection:
    return Selection(strategy="gaussian", scores_tag="t", fill="round_robin", allow_shortfall=True, **fields)


def distinct_length_pool(rng: random.Random, size: int, queries: int) -> list[tuple]:
    """(sample_id, query, ppl, length): PPL on a 0.01 grid over [0.9, 5.2] (edges, values
    outside [1, 5]), every length different."""
    query_ids = [hex_id(rng) for _ in range(queries)]
    lengths = rng.sample(range(100, 100_000), size)
    return [
        (hex_id(rng), rng.choice(query_ids), round(0.9 + 0.01 * rng.randrange(431), 2), length) for length in lengths
    ]


@pytest.mark.parametrize("d", [1, 2, 10])
@pytest.mark.parametrize("case", range(6))
def test_round_robin_equals_the_released_scripts_passes(d, case, monkeypatch):
    if case % 2:  # walk in the smallest chunks: every prefix extension
        monkeypatch.setattr(sampling, "_MIN_PREFIX", 1)
    rng = random.Random(1000 * d + case)
    rows = distinct_length_pool(rng, size=rng.choice([600, 1500]), queries=rng.choice([3, 8, 20, 60]))
    params = {
        "mu": rng.choice([2.5, 3.0]),
        "sigma": rng.choice([0.25, 0.5, 1.0]),
        "n": rng.choice([300, 900]),
        "p_min": 1.0,
        "p_max": 5.0,
        "bin_width": rng.choice([0.05, 0.1, 0.3]),
    }
    expected, targets = released_mle_script(
        rows,
        params["mu"],
        params["sigma"],
        params["n"],
        d,
        params["p_min"],
        params["p_max"],
        params["bin_width"],
    )
    result = select_candidates(in_memory(rows), round_robin(max_per_problem=d, seed=case, **params))
    assert result.chosen["sample_id"].to_pylist() == expected
    assert [b["target"] for b in result.bins] == targets
    achieved = [b["achieved"] for b in result.bins]
    assert any(a < t for a, t in zip(achieved, targets))  # some bins fall short
    assert sum(achieved) == len(expected)
    funnel = result.funnel
    assert funnel["input"] == sum(funnel["dropped"].values()) + funnel["selected"] == len(rows)
    if d == 10:  # the passes matter: some query has more than one row in a bin
        per_bin_query = defaultdict(int)
        query_of = {r[0]: r[1] for r in rows}
        for sample_id, b in zip(expected, result.chosen["ppl_bin"].to_pylist()):
            per_bin_query[(b, query_of[sample_id])] += 1
        assert max(per_bin_query.values()) > 1


def test_round_robin_takes_one_row_per_query_before_a_second():
    """Two bins, d = 2 across them. Round robin takes P's longest and Q's before P's
    second; Algorithm 1 as printed takes P's two longest first. The released loop, which
    does not mark taken rows, appends the same longest rows again in its second pass."""
    p, q, r = "1" * 24, "2" * 24, "3" * 24
    a, b, c, e, f, g = ("a" * 24, "b" * 24, "c" * 24, "e" * 24, "f" * 24, "0" * 24)
    rows = [
        (a, p, 2.1, 900),  # bin [2.0, 2.5)
        (b, p, 2.2, 800),
        (c, q, 2.3, 700),
        (e, p, 2.6, 950),  # bin [2.5, 3.0]
        (g, q, 2.7, 60),
        (f, r, 2.8, 50),
    ]
    fields = dict(mu=2.5, sigma=10.0, bin_width=0.5, p_min=2.0, p_max=3.0, max_per_problem=2)
    passes = select_candidates(in_memory(rows), round_robin(n=6, **fields))
    assert [b["target"] for b in passes.bins] == [3, 3]
    assert passes.chosen["sample_id"].to_pylist() == [a, c, b, g, f]  # bin 1: e over the cap, short by one
    assert [b["achieved"] for b in passes.bins] == [3, 2]
    assert passes.funnel["dropped"]["over_problem_cap"] == 1
    script_literal, _ = released_mle_script(rows, 2.5, 10.0, 6, 2, 2.0, 3.0, 0.5, mark_taken=False)
    assert script_literal == [a, c, a, g, f, f]
    assert released_mle_script(rows, 2.5, 10.0, 6, 2, 2.0, 3.0, 0.5)[0] == [a, c, b, g, f]
    fewer = select_candidates(in_memory(rows), round_robin(n=4, **fields))
    assert fewer.chosen["sample_id"].to_pylist() == [a, c, e, g]
    printed = select_candidates(
        in_memory(rows), Selection(**{**round_robin(n=4, **fields).__dict__, "fill": "longest_first"})
    )
    assert printed.chosen["sample_id"].to_pylist() == [a, b, g, f]  # P full after bin 0: e skipped


# -- the SFT_LP and unlikelihood presets against the released heap selection ------------------


def released_lowest_heap(rows, global_k, max_per_query=1):
    """make_SFT_LP_data.py (and make_ULloss_data.py after its filters): each query's
    responses sorted by PPL, the best max_per_query of them into a heap that keeps the
    global_k lowest PPLs. rows: (sample_id, query, ppl). Returns ids, lowest PPL first."""
    by_query = defaultdict(list)
    for sample_id, query, ppl in rows:
        by_query[query].append((ppl, sample_id))
    lowest_heap, counter = [], 0
    for local_pairs in by_query.values():
        local_pairs.sort(key=lambda x: x[0])
        for p_val, sample_id in local_pairs[:max_per_query]:
            counter += 1
            item = (-p_val, counter, sample_id)
            if len(lowest_heap) < global_k:
                heapq.heappush(lowest_heap, item)
            elif -p_val > lowest_heap[0][0]:
                heapq.heapreplace(lowest_heap, item)
    return [sample_id for _, _, sample_id in sorted(lowest_heap, key=lambda x: -x[0])]


@pytest.fixture(scope="module")
def released_pool(tmp_path_factory):
    """A workspace with 40 problems: correct teacher responses (distinct lengths), and
    self-generated responses (correct and incorrect, some under PPL 1.2, some over 25k
    tokens); every PPL distinct. Returns (workspace, rows with their sample ids)."""
    rng = random.Random(7)
    ppls = rng.sample(range(1000, 6000), 400)  # distinct PPLs: 1.000 to 5.999
    lengths = rng.sample(range(100, 40_000), 400)  # the teacher's, distinct
    rows = []
    for k in range(400):
        problem = rng.randrange(40)
        origin, verdict = rng.choice([("teacher", "correct"), ("self", "incorrect"), ("self", "correct")])
        n_tokens = lengths[k] if origin == "teacher" else rng.choice([500, 8000, 24_999, 25_000, 25_001, 30_000])
        rows.append(
            {
                "problem": f"Problem {problem}: find x.",
                "response": f"<think>{k}</think> \\boxed{{{k}}}",
                "gold": "1",
                "origin": origin,
                "verdict": verdict,
                "ppl": ppls[k] / 1000,
                "n_tokens": n_tokens,
            }
        )
    root = tmp_path_factory.mktemp("released")
    ws = Workspace.init(root / "ws")
    ids = add_pool(ws, root, rows)
    for row, sample_id in zip(rows, ids):
        row["sample_id"] = sample_id
    return ws, rows


def selected_ids(ws, config, loss_type=0):
    stats = run_select(ws, config)
    data = pq.read_table(f"{stats['path']}/data.parquet", columns=["sample_id", "loss_type"]).to_pylist()
    return [r["sample_id"] for r in data if r["loss_type"] == loss_type]


@pytest.mark.parametrize("n", [5, 12, 40])
def test_sft_lp_preset_equals_the_released_heap(released_pool, n):
    ws, rows = released_pool
    config = load_select_config("sft-lp-qwen2.5-7b", [f"scores_tag={TAG}", f"N={n}", "allow_shortfall=true"])
    teacher = [
        (r["sample_id"], r["problem"], r["ppl"]) for r in rows if (r["origin"], r["verdict"]) == ("teacher", "correct")
    ]
    expected = released_lowest_heap(teacher, n)
    assert len(expected) == min(n, len({r[1] for r in teacher}))
    assert selected_ids(ws, config) == expected


@pytest.mark.parametrize("n", [5, 12, 40])
def test_oxa_full_preset_equals_the_released_scripts(released_pool, n):
    """Negatives: make_ULloss_data.py (incorrect self-generated, PPL >= 1.2, at most 25k
    tokens, the heap); positives: make_OXA_MLE_data.py at one response per query."""
    ws, rows = released_pool
    config = load_select_config(
        "oxa-full-qwen2.5-7b",
        [
            f"{part}.{key}"
            for part in ("positives", "negatives")
            for key in (f"scores_tag={TAG}", f"N={n}", "allow_shortfall=true")
        ]
        + ["positives.w=0.5", "positives.sigma=1.0"],
    )
    errors = [
        (r["sample_id"], r["problem"], r["ppl"])
        for r in rows
        if (r["origin"], r["verdict"]) == ("self", "incorrect") and r["ppl"] >= 1.2 and r["n_tokens"] <= 25_000
    ]
    assert selected_ids(ws, config, loss_type=1) == released_lowest_heap(errors, n)
    teacher = [
        (r["sample_id"], r["problem"], r["ppl"], r["n_tokens"])
        for r in rows
        if (r["origin"], r["verdict"]) == ("teacher", "correct")
    ]
    expected, _ = released_mle_script(teacher, 3.0, 1.0, n, 1, 1.0, 5.0, 0.5)
    assert selected_ids(ws, config, loss_type=0) == expected


def test_oxa_mle_preset_equals_the_released_script_and_its_card_names_the_fill(released_pool):
    """make_OXA_MLE_data.py's settings (d 10, passes), with w 0.5 and sigma 1 to suit 400
    rows: the rows the script takes, in its order; the card records the fill."""
    ws, rows = released_pool
    config = load_select_config(
        "oxa-mle-qwen2.5-7b", [f"scores_tag={TAG}", "N=120", "w=0.5", "sigma=1.0", "allow_shortfall=true"]
    )
    teacher = [
        (r["sample_id"], r["problem"], r["ppl"], r["n_tokens"])
        for r in rows
        if (r["origin"], r["verdict"]) == ("teacher", "correct")
    ]
    expected, _ = released_mle_script(teacher, 3.0, 1.0, 120, 10, 1.0, 5.0, 0.5)
    stats = run_select(ws, config)
    data = pq.read_table(f"{stats['path']}/data.parquet", columns=["sample_id", "problem_id"])
    assert data["sample_id"].to_pylist() == expected
    assert max(Counter(data["problem_id"].to_pylist()).values()) > 1  # a problem in several bins
    card = json.loads(Path(stats["path"], "card.json").read_text())
    assert (card["selection"]["fill"], card["selection"]["max_per_problem"]) == ("round_robin", 10)
    assert "| `fill` | `round_robin` |" in Path(stats["path"], "card.md").read_text()


def test_presets_name_the_reading_they_follow():
    released = load_select_config("oxa-mle-qwen2.5-7b").resolved()
    printed = load_select_config("oxa-mle-qwen2.5-7b-alg1").resolved()
    same = {"mu": 3.0, "sigma": 0.25, "p_min": 1.0, "p_max": 5.0, "bin_width": 0.05, "n": 50_000}
    assert released == {**released, **same, "fill": "round_robin", "max_per_problem": 10}
    assert printed == {**printed, **same, "fill": "longest_first", "max_per_problem": 1}
    assert {k: v for k, v in released.items() if k not in ("fill", "max_per_problem")} == {
        k: v for k, v in printed.items() if k not in ("fill", "max_per_problem")
    }

import hashlib
import json
import unicodedata
from pathlib import Path

import pytest

from curate.backends.base import sleep_while_waiting
from curate.synth.families import RICH
from curate.synth.styles import VOICES
from curate.synth.world import WorldConfig, build_world
from curate.workspace import Workspace

# Before any test loads torch: its OpenMP threads sleep while they wait, so the suite beside
# a busy process slows by that process's share, not several times (train/threads.py).
sleep_while_waiting()

# The real benchmark sets and verl prompt file (a copy of ../shared/data that the package
# ships), so the tests need nothing outside the repository.
REAL_DATA = Path(__file__).resolve().parents[1] / "curate" / "data"

_SPACES = set("\t\n\x0b\x0c\r")


def naive_normalize(text: str) -> str:
    """Reference for oxa_normalize_problem, written char by char."""
    text = unicodedata.normalize("NFC", text)
    out, in_space = [], False
    for ch in text:
        if ch in _SPACES or unicodedata.category(ch).startswith("Z"):
            if not in_space:
                out.append(" ")
            in_space = True
        else:
            out.append(ch)
            in_space = False
    return "".join(out).strip(" ")


def naive_problem_id(problem: str) -> str:
    return hashlib.md5(naive_normalize(problem).encode()).hexdigest()[:24]


def naive_sample_id(problem: str, response: str) -> str:
    return hashlib.md5(f"{naive_problem_id(problem)}\n{response}".encode()).hexdigest()[:24]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


def write_jsonl(path: Path, rows: list) -> Path:
    """Rows may be dicts (dumped as JSON) or raw bytes/str lines written as they are."""
    with open(path, "wb") as handle:
        for row in rows:
            if isinstance(row, bytes):
                handle.write(row + b"\n")
            elif isinstance(row, str):
                handle.write(row.encode() + b"\n")
            else:
                handle.write(json.dumps(row).encode() + b"\n")
    return path


def query(ws: Workspace, sql: str, params=None) -> list[tuple]:
    con = ws.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def rejects(ws: Workspace, stats: dict) -> list[tuple]:
    """(source_row, source_index, reason) of a run's rejects, in file order."""
    folder = ws.run_dir("ingest", stats["run_id"]) / "rejects"
    if not any(folder.glob("*.parquet")):
        return []
    import duckdb

    return (
        duckdb.connect()
        .sql(
            f"SELECT source_row, source_index, reason FROM read_parquet('{folder}/*.parquet') "
            "ORDER BY source_file, source_row, source_index NULLS FIRST"
        )
        .fetchall()
    )


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: fixed reduction order, so float sums repeat exactly."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# The test bed (curate.synth, train.tiny.models), small enough to build once per session.
# The curation world: every answer form, wordy problems in four voices.
SMALL_WORLD = WorldConfig(
    problems=40, heldout=8, reference_only=16, corpus_problems=48, families=list(RICH), styles=list(VOICES)
)
FAST_MODELS = {
    "styles": ["concise", "chatty"],
    "hidden_size": 64,
    "heads": 2,
    "intermediate_size": 256,
    "block": 128,
    "batch": 8,
    "pretrain_steps": 150,
    "learning_rate": 5e-3,
    "sft_examples": 64,
    "sft_steps": 20,
}


@pytest.fixture(scope="session")
def synth_world(tmp_path_factory) -> Path:
    """A small synthetic world (`oxa synth world`); its manifest.json says what is true of it."""
    folder = tmp_path_factory.mktemp("synth") / "world"
    build_world(folder, SMALL_WORLD)
    return folder


@pytest.fixture(scope="session")
def tiny_models(synth_world, tmp_path_factory) -> Path:
    """The world's tokenizer and tiny models (`oxa synth model`): base/ and instruct/."""
    pytest.importorskip("torch")
    from train.tiny import TinyModelConfig, build_tiny_models

    folder = tmp_path_factory.mktemp("synth") / "models"
    config = TinyModelConfig(world=str(synth_world), out=str(folder), **FAST_MODELS)
    build_tiny_models(config, progress=lambda message: None)
    return folder

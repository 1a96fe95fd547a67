"""The verification pool's processes die with its owner whatever signal ends it, and the
owner's multiprocessing temp folder is removed by the next pool."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from curate.ingest import IngestConfig, run_ingest
from curate.verify.deadline_pool import DeadlinePool
from curate.workspace.parts import process_alive
from tests.conftest import write_jsonl

# Two workers stuck in one C call each (sum over a huge range holds the GIL, like
# sympy on 9^{9^{9^{9}}}), under an hour's deadline: only their owner's death ends them.
STUCK_POOL = """
from curate.verify.deadline_pool import DeadlinePool
pool = DeadlinePool(sum, workers=2, deadline_s=3600)
print("started", flush=True)
for _ in pool.imap_unordered([range(10**14), range(10**14)]):
    pass
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _parents() -> dict[int, int]:
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[int(stat.parent.name)] = int(fields[1])
    return found


def _descendants(pid: int) -> set[int]:
    parents, found, frontier = _parents(), set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("kill_with", [signal.SIGKILL, signal.SIGTERM])
def test_workers_and_fork_server_die_with_their_owner_and_its_temp_folder_goes(kill_with):
    owner = subprocess.Popen([sys.executable, "-c", STUCK_POOL], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline() == "started\n"
        # the fork server, its two workers (and multiprocessing's resource tracker), the
        # workers busy on their items
        assert _wait_until(lambda: sum(_cpu_seconds(p) > 1.0 for p in _descendants(owner.pid)) >= 2, 120)
        processes = _descendants(owner.pid)
        temp_folders = list(Path(tempfile.gettempdir()).glob(f"oxa-mp~*~{owner.pid}-*"))
        os.kill(owner.pid, kill_with)
        owner.wait(60)
        assert _wait_until(lambda: not any(process_alive(p) for p in processes), 60), [
            (p, Path(f"/proc/{p}/cmdline").read_bytes()[:80]) for p in processes if process_alive(p)
        ]
    finally:
        owner.kill()
        owner.wait()
    (temp_folder,) = temp_folders
    if kill_with == signal.SIGKILL:
        assert temp_folder.is_dir()  # nothing ran at the owner's exit
    with DeadlinePool(abs, workers=1, deadline_s=60) as pool:  # the next pool cleans up
        assert pool.map([-3]) == [3]
    assert not temp_folder.exists()


def test_killed_oxa_verify_leaves_no_worker_on_a_tower_of_powers(ws, tmp_path):
    tower = "<think>\nwork it out\n</think>\n\nThe answer is $\\boxed{9^{9^{9^{9}}}}$."
    source = write_jsonl(tmp_path / "pool.jsonl", [{"problem": "tower", "response": tower, "gold": "5"}])
    mapping = {"problem": "problem", "response": "response", "gold_answer": "gold"}
    run_ingest(ws, IngestConfig([str(source)], mapping=mapping))
    verify = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "curate.cli",
            "verify",
            str(ws.root),
            "--workers",
            "1",
            "--deadline",
            "3600",
            "--parse-timeout",
            "0",
            "--verify-timeout",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # a worker (a child of the fork server) deep in the power, not just started
        assert _wait_until(lambda: any(_cpu_seconds(p) > 3.0 for p in _grandchildren(verify.pid)), 180)
        processes = _descendants(verify.pid)
        verify.kill()
        verify.wait(60)
        assert _wait_until(lambda: not any(process_alive(p) for p in processes), 60)
    finally:
        verify.kill()
        verify.wait()


def _grandchildren(pid: int) -> set[int]:
    parents = _parents()
    children = {child for child, parent in parents.items() if parent == pid}
    return {child for child, parent in parents.items() if parent in children}


UNGUARDED_SCRIPT = """
from curate.ingest import IngestConfig, run_ingest
from curate.verify import VerifyConfig, run_verify
from curate.workspace import Workspace

ws = Workspace.init({root!r})
run_ingest(ws, IngestConfig([{pool!r}], mapping={{"problem": "q", "response": "a", "gold_answer": "gold"}}))
print(run_verify(ws, VerifyConfig(workers=1))["summary"])
"""

SPAWNED_STAGE = """
import multiprocessing
from curate.ingest import IngestConfig, run_ingest
from curate.workspace import Workspace

def ingest(root, pool):
    run_ingest(Workspace.init(root), IngestConfig([pool], mapping={{"problem": "q", "response": "a"}}))

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=ingest, args=({root!r}, {pool!r}))
    child.start()
    child.join()
    print("exit code", child.exitcode)
"""


def _run_script(tmp_path: Path, text: str) -> tuple[subprocess.CompletedProcess, Path]:
    pool = write_jsonl(
        tmp_path / "pool.jsonl", [{"q": "What is 1 + 1?", "a": "<think>x</think> \\boxed{2}", "gold": "2"}]
    )
    root = tmp_path / "ws"
    script = tmp_path / "script.py"
    script.write_text(text.format(root=str(root), pool=str(pool)))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    return done, root


def test_a_script_without_a_main_guard_runs_its_stages_once(tmp_path):
    """The fork server imports the main module; without the guard the script's ingest ran a second
    time there. Now that run stops at its first oxa call with the fix, and the script goes on."""
    done, root = _run_script(tmp_path, UNGUARDED_SCRIPT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 verified (1 correct)" in done.stdout
    assert 'top-level calls under `if __name__ == "__main__":`' in done.stderr
    assert len(list((root / "runs" / "ingest").iterdir())) == 1


def test_a_stage_in_a_spawned_process_target_runs(tmp_path):
    """Only the import of the main module is refused, not a process's target function."""
    done, root = _run_script(tmp_path, SPAWNED_STAGE)
    assert done.returncode == 0 and "exit code 0" in done.stdout, done.stderr[-3000:]
    assert len(list((root / "runs" / "ingest").iterdir())) == 1

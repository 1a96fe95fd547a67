"""bench/stage_usage.py (issue 33, item 5): a command's CPU seconds, and those of its busiest
threads, which bound its wall time on any number of cores."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pipeline

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="the threads are read from Linux's /proc")

BURN = "import time\ndef burn(s):\n    t = time.process_time()\n    while time.process_time() - t < s: pass\n"


def usage(tmp_path: Path, code: str) -> tuple[int, dict]:
    out = tmp_path / "usage.json"
    command = [sys.executable, str(ROOT / "bench" / "stage_usage.py"), str(out), sys.executable, "-c", BURN + code]
    rc = subprocess.run(command, timeout=60, cwd=ROOT).returncode
    return rc, json.loads(out.read_text())


def test_a_busy_thread_is_found_and_the_exit_code_kept(tmp_path):
    code = "import threading, sys\nt = threading.Thread(target=burn, args=(0.8,))\nt.start(); t.join()\nsys.exit(3)"
    rc, used = usage(tmp_path, code)
    assert rc == 3
    busiest = used["busiest_threads"][0]
    assert busiest["where"] == "another thread of the process"
    assert 0.5 <= busiest["cpu_s"] <= used["cpu_s"]  # sampled: a little low at most
    assert len(used["busiest_threads"]) <= 3
    assert used["busiest_threads"] == sorted(used["busiest_threads"], key=lambda t: -t["cpu_s"])


def test_a_grandchild_counts_in_the_totals_and_the_threads(tmp_path):
    code = (
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'import time\\nt = time.process_time()\\n"
        "while time.process_time() - t < 0.8: pass'])\n"
        "burn(0.2)"
    )
    rc, used = usage(tmp_path, code)
    assert rc == 0
    busiest, main = used["busiest_threads"][:2]
    assert busiest["where"] == "a child process" and busiest["cpu_s"] >= 0.5
    assert main["where"] == "the main thread"
    assert used["cpu_s"] >= 1.0  # both processes' CPU, through the subreaper


def test_a_thread_oxa_names_is_found_by_its_name(tmp_path):
    code = (
        "import threading\nfrom curate.thread_names import name_this_thread\n"
        "def work():\n    name_this_thread('write-samples')\n    burn(0.6)\n"
        "t = threading.Thread(target=work)\nt.start(); t.join()"
    )
    rc, used = usage(tmp_path, code)
    assert rc == 0
    assert used["busiest_threads"][0]["name"] == "oxa:write-sampl"  # the OS keeps 15 bytes
    assert used["busiest_threads"][0]["where"] == "another thread of the process"


def test_the_many_core_estimate_runs_from_the_lone_threads_to_the_main_thread():
    pool = {"cpu_s": 90.0, "name": "python3", "where": "another thread of the process"}  # DuckDB's, say
    writer = {"cpu_s": 30.0, "name": "oxa:write-sampl", "where": "another thread of the process"}
    main = {"cpu_s": 50.0, "name": "python", "where": "the main thread"}
    worker = {"cpu_s": 95.0, "name": "python", "where": "a child process"}
    stage = {"cpu_s": 640.0, "busiest_threads": [worker, pool, main, writer]}
    assert pipeline.lone_threads(stage) == [writer]
    assert (pipeline.lone_thread_s(stage), pipeline.main_thread_s(stage)) == (30.0, 50.0)
    assert pipeline.on_cores(stage) == (30.0, 50.0)  # 640 / 64 = 10: the writer, then the main thread
    assert pipeline.on_cores(stage, cores=8) == (80.0, 80.0)  # the CPU over 8 cores bounds both
    assert pipeline.on_cores({"cpu_s": 6.4, "busiest_threads": [pool, worker]}) == (0.1, 0.1)  # pools divide

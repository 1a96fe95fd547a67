"""bench/suite.py (issue 33, item 7): pytest as the machine is and beside a busy neighbour."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def suite(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "bench" / "suite.py"), "--", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_both_runs_are_timed_side_by_side_with_their_ratio():
    result = suite("tests/test_extract.py", "-k", "require_think")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pytest tests/test_extract.py -k require_think on ")
    assert lines[1].startswith("as the machine is: ") and ", exit code 0 " in lines[1]
    assert re.fullmatch(r"  1 passed, \d+ deselected in [\d.]+s", lines[2]), lines[2]
    assert lines[3].startswith("beside a busy neighbour: ") and ", exit code 0 " in lines[3]
    assert re.fullmatch(r"  1 passed, \d+ deselected in [\d.]+s", lines[4]), lines[4]
    assert lines[5].startswith("ratio: ") and lines[5].endswith("x")


def test_a_failing_run_fails_the_benchmark():
    result = suite("tests/no_such_test_file.py")
    assert result.returncode == 1
    assert ", exit code 4 " in result.stdout  # pytest's 'no tests collected from that path'

"""The test suite on a shared CPU (issue 33, item 7): pytest as the machine is, then beside
one busy neighbour (bench/demo.py's: a child spinning on one CPU, killed after), side by
side, with the ratio. On 2 CPUs a neighbour takes a third of the machine, so a suite that
degrades by its share of the machine is about 1.5x slower; one whose threads spin while
they wait is several times slower (issue 33 measured 20 min against 8).

    .venv/bin/python bench/suite.py                 # the model-backed tests (MODEL_TESTS)
    .venv/bin/python bench/suite.py --all           # the whole suite, as .ci/run runs it
    .venv/bin/python bench/suite.py -- tests/test_grpo.py -k entropy   # any pytest arguments

Both runs must pass; the script prints each run's wall time, the load averages around it
and the ratio, and exits 1 if either run failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.demo import neighbour_if  # noqa: E402

# The tests that train, sample or score with torch: the work whose threads decide how a
# neighbour slows the suite (the rest is DuckDB, Polars and math-verify in processes).
MODEL_TESTS = (
    "tests/test_oxa_trainer.py",
    "tests/test_train_cli.py",
    "tests/test_grpo.py",
    "tests/test_eval.py",
    "tests/test_score.py",
    "tests/test_generate.py",
    "tests/test_synth_models.py",
)


def run_pytest(arguments: list[str], loaded: bool) -> tuple[float, int]:
    """Wall seconds and exit code of one pytest run; with `loaded`, beside a busy neighbour."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments]
    with neighbour_if(loaded):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
    rc = result.returncode
    label = "beside a busy neighbour" if loaded else "as the machine is"
    print(
        f"{label}: {wall:.0f} s, exit code {rc} (load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)"
    )
    lines = (result.stdout + result.stderr).strip().splitlines()
    # pytest's summary line; a failed run's short summary above it too
    print("\n".join("  " + line for line in (lines[-30:] if rc else lines[-1:])), flush=True)
    return wall, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="the whole suite (the README's test command)")
    parser.add_argument("pytest_args", nargs="*", help="pytest arguments (after --); default: MODEL_TESTS")
    args = parser.parse_args()
    arguments = [] if args.all else (args.pytest_args or list(MODEL_TESTS))
    print(f"pytest {' '.join(arguments) or '(the whole suite)'} on {os.cpu_count()} CPUs")
    idle, idle_rc = run_pytest(arguments, loaded=False)
    busy, busy_rc = run_pytest(arguments, loaded=True)
    print(f"ratio: {busy / idle:.2f}x")
    sys.exit(1 if idle_rc or busy_rc else 0)


if __name__ == "__main__":
    main()

"""CLI start-up benchmark: the commands a user types first, against `import duckdb`.

Times, each in a fresh process, best and median of --repeat runs, wall clock and CPU
(user + system of the process: what a busy machine does not inflate):

  python -c 'import duckdb'          the floor: oxa cannot start faster than its engine
  oxa --help
  oxa init WS                       (a new workspace each run)
  oxa status WS
  oxa sql WS 'SELECT 1'

and the modules each command imported that it should not need (polars, sympy,
math-verify, torch, matplotlib, transformers; tests/test_cli.py asserts their absence).
Target: every command under 1 s.

Bytecode is cached as an installed oxa has it (pip compiles .pyc files at install): the
runs go with PYTHONDONTWRITEBYTECODE unset and PYTHONPYCACHEPREFIX in a temporary
folder, after one untimed run of each command to fill it.

    .venv/bin/python bench/cli_startup.py --repeat 7
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("polars", "sympy", "math_verify", "torch", "matplotlib", "transformers")
_REPORT = (
    "import sys\nfrom curate.cli import main\nsys.argv = ['oxa', *sys.argv[1:]]\ntry:\n    main()\nfinally:\n"
    f"    print('heavy:', ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr}")
    heavy = next((line for line in reversed(result.stderr.splitlines()) if line.startswith("heavy:")), "heavy: -")
    return seconds, cpu, heavy.removeprefix("heavy:").strip() or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (best and median reported)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oxa-startup-"))
    ws = work / "ws"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    oxa = [sys.executable, "-c", _REPORT]
    subprocess.run([*oxa, "init", str(ws)], check=True, capture_output=True, env=env)
    commands = {
        "python -c 'import duckdb'": lambda i: [sys.executable, "-c", "import duckdb"],
        "oxa --help": lambda i: [*oxa, "--help"],
        "oxa init WS": lambda i: [*oxa, "init", str(work / f"new-{i}")],
        "oxa status WS": lambda i: [*oxa, "status", str(ws)],
        "oxa sql WS 'SELECT 1'": lambda i: [*oxa, "sql", str(ws), "SELECT 1"],
    }
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}")
    print(f"machine load (1 min): {os.getloadavg()[0]:.2f}")
    print(f"{'command':<28} {'best':>7} {'median':>7} {'x duckdb':>9} {'CPU best':>9} {'CPU x':>6}  heavy modules")
    floor = None
    try:
        for name, argv in commands.items():
            _timed(argv(-1), env)  # fills the bytecode cache
            runs = [_timed(argv(i), env) for i in range(args.repeat)]
            best, median = min(r[0] for r in runs), statistics.median(r[0] for r in runs)
            cpu = min(r[1] for r in runs)
            floor = floor or (best, cpu)
            print(
                f"{name:<28} {best:>6.2f}s {median:>6.2f}s {best / floor[0]:>8.1f}x "
                f"{cpu:>8.2f}s {cpu / floor[1]:>5.1f}x  {runs[0][2]}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

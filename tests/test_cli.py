"""The oxa command line, as a user runs it."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
from typer.testing import CliRunner

from curate.cli import _unwrap_paragraph, app
from tests.conftest import REAL_DATA, write_jsonl

runner = CliRunner()


def oxa(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result


def oxa_process(*args):
    """Through the console entry point, for exit codes and error output."""
    return subprocess.run([sys.executable, "-m", "curate.cli", *map(str, args)], capture_output=True, text=True)


def test_init_ingest_status_sql(tmp_path):
    ws = tmp_path / "ws"
    assert oxa("init", ws).exit_code == 0
    src = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"question": "What is 1+1?", "solution": "\\boxed{2}", "final": "2"},
            {"question": "What is 2+2?", "solution": "\\boxed{4}", "final": "4"},
            {"question": "", "solution": "\\boxed{0}", "final": "0"},
        ],
    )
    result = oxa(
        "ingest",
        ws,
        src,
        "--map",
        "problem=question",
        "--map",
        "response=solution",
        "--map",
        "gold_answer=final",
        "--generator",
        "my-teacher",
    )
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output and "rejected: empty_problem" in result.output
    status = oxa("status", ws).output
    assert "samples" in status and "ingest" in status and "done" in status

    csv = oxa(
        "sql", ws, "SELECT problem, generator, gold_answer FROM candidates ORDER BY problem", "--format", "csv"
    ).output
    assert csv.splitlines() == [
        "problem,generator,gold_answer",
        "What is 1+1?,my-teacher,2",
        "What is 2+2?,my-teacher,4",
    ]
    rows = json.loads(oxa("sql", ws, "SELECT count(*) AS n FROM samples", "-f", "json").output)
    assert rows == [{"n": 2}]
    out = tmp_path / "c.parquet"
    assert oxa("sql", ws, "SELECT * FROM candidates", "-f", "parquet", "-o", out).exit_code == 0
    assert pq.read_table(out).num_rows == 2
    assert "pool_summary" in oxa("sql", ws, "--list").output
    table = oxa("sql", ws, "--query", "pool_summary").output
    assert "qa" in table  # the source defaults to the file's name


def test_errors_are_one_clear_line_with_exit_code_2(tmp_path):
    ws = tmp_path / "ws"
    oxa("init", ws)
    result = oxa_process("sql", ws, "SELECT nope FROM samples")
    assert result.returncode == 2
    assert result.stderr.startswith("error: SQL error: Binder Error") and "Traceback" not in result.stderr
    result = oxa_process("ingest", ws, tmp_path / "missing.jsonl")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = oxa_process("status", tmp_path / "elsewhere")
    assert result.returncode == 2 and "not an oxa workspace" in result.stderr
    result = oxa_process("ingest", ws, REAL_DATA / "formats" / "aime24.verl.parquet", "--map", "problem")
    assert result.returncode == 2 and "--map takes FIELD=COLUMN" in result.stderr


def test_help_explains_the_commands():
    top = oxa("--help").output
    for command in ("init", "status", "ingest", "sql", "demo"):
        assert command in top
    ingest_help = oxa("ingest", "--help").output
    assert "acereason" in ingest_help and "oxa-lists" in ingest_help and "--where" in ingest_help


def test_help_text_wraps_to_the_terminal_not_to_the_source():
    """Through the entry point at 80 columns: a docstring's source line breaks are joined (typer keeps them,
    and a narrower terminal broke each line again); lines meant one per line stay apart."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    verify = subprocess.run(
        [sys.executable, "-m", "curate.cli", "verify", "--help"], capture_output=True, text=True, env=env
    )
    assert verify.returncode == 0, verify.stderr
    text = " ".join(line.strip() for line in verify.stdout.splitlines())
    assert "each with a reason, and beside them a simple verdict" in text
    lines = [line.strip() for line in verify.stdout.splitlines()]
    assert not any(line in ("reason,", "Each", "in", "one after") for line in lines), lines[:20]
    assert _unwrap_paragraph("A long line that\nwraps here. A list:\n- one;\n- two.\nNext: x") == (
        "A long line that wraps here. A list:\n- one;\n- two.\nNext: x"
    )


HEAVY = ("polars", "sympy", "math_verify", "torch", "matplotlib", "transformers")


def test_the_commands_a_user_types_first_import_no_heavy_library(tmp_path):
    """`oxa --help`, `oxa init`, `oxa status` and `oxa sql` (`--describe` too) start without polars, sympy,
    math-verify, torch, matplotlib or transformers (seconds to import; bench/cli_startup.py
    measures the time)."""
    code = (
        "import sys\n"
        "from curate.cli import main\n"
        "sys.argv = ['oxa', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        f"    print('heavy:', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    ws = tmp_path / "ws"
    for args in (["--help"], ["init", ws], ["status", ws], ["sql", ws, "SELECT 1"], ["sql", ws, "--list"],
                 ["sql", ws, "--describe", "gold"]):  # fmt: skip
        result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines()[-1] == "heavy: []", (args, result.stderr)

"""The Python examples of docs/ run as shown, on the test bed's tiny base model in place of
the model folder they name (`MODEL = "..."`). README.md's example runs in
tests/test_docs_recipe.py with the recipe it belongs to."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from tests.doc_commands import ROOT, fenced_blocks

EXAMPLES = [
    (block, f"{path.relative_to(ROOT)}:{block.first_line}")
    for path in sorted((ROOT / "docs").glob("*.md"))
    for block in fenced_blocks(path)
    if block.language == "python"
]
_MODEL = re.compile(r'^MODEL = "[^"]*"', re.M)


def test_the_docs_have_python_examples():
    assert [where for _, where in EXAMPLES if where.startswith("docs/oxa-trainer.md")]


@pytest.mark.parametrize("block", [b for b, _ in EXAMPLES], ids=[w for _, w in EXAMPLES])
def test_python_example_runs(block, tiny_models, tmp_path):
    code, replaced = _MODEL.subn(f"MODEL = {str(tiny_models / 'base')!r}", block.text)
    assert replaced == 1, 'an example names its model once, as MODEL = "..."'
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.strip().splitlines()[-1]
    numbers = [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", printed)]
    assert numbers and all(math.isfinite(x) for x in numbers), printed

"""The layout's promises, read off the source with `ast`: imports run one way (train ->
curate, never curate -> train), no module or stage folder imports itself back, and the
curation core imports without torch."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("curate", "train")
# The only curate modules that need torch: the HF backend and the chunked log-probs it
# shares with the trainer (vllm.py needs vLLM; it imports torch only through vLLM).
NEEDS_TORCH = {"curate.backends.hf", "curate.backends.token_logprobs"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path
    for package in PACKAGES
    for path in sorted((ROOT / package).rglob("*.py"))
    if "_resources" not in path.parts
}


def _imports(module: str) -> set[str]:
    """Every module `module` imports, wherever the statement stands (top level, inside a
    function, under TYPE_CHECKING), with `from pkg import sub` resolved to the submodule,
    plus the modules a lazy `_EXPORTS` table of a package __init__ names."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            found.update(ast.literal_eval(node.value).values())
    return {name for name in found if name.split(".")[0] in PACKAGES}


GRAPH = {module: _imports(module) for module in MODULES}


def _stage(module: str) -> str:
    """The folder a module belongs to (curate.verify.mathcheck -> curate.verify); a module
    at the top of a package (train.demo) is its own."""
    parts = MODULES[module].relative_to(ROOT).parts
    return ".".join(parts[:2]) if len(parts) > 2 else module


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as the list of its nodes, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for succ in sorted(graph.get(node, ())):
            if state.get(succ) == 1:
                return path[path.index(succ) :] + [succ]
            if succ not in state and (found := visit(succ)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_import_names_a_module_that_exists():
    missing = {(m, i) for m, targets in GRAPH.items() for i in targets if i not in MODULES}
    assert missing == set()


def test_curate_never_imports_train():
    back = {(m, i) for m, targets in GRAPH.items() if m.startswith("curate") for i in targets if i.startswith("train")}
    assert back == set()


def test_no_import_cycles_between_modules():
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    graph = {m: {i for i in targets if not m.startswith(i + ".")} for m, targets in GRAPH.items()}
    assert _cycle(graph) is None


def test_no_import_cycles_between_stage_folders():
    folders: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        folders.setdefault(_stage(module), set()).update(_stage(t) for t in targets if _stage(t) != _stage(module))
    assert _cycle(folders) is None
    # and the folders are the ones docs/architecture.md draws
    assert {"curate.workspace", "curate.ingest", "curate.trace", "curate.verify", "curate.score"} <= set(folders)
    assert {"train.sft", "train.grpo", "train.eval", "train.tiny", "train.cli"} <= set(folders)


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_curation_core_imports_without_torch():
    """Every curate module but the torch backends imports with torch made unimportable."""
    skip = NEEDS_TORCH | {"curate.backends.vllm", "curate.cli.__main__"}
    core = sorted(m for m in MODULES if m.startswith("curate") and m not in skip)
    code = "import sys; sys.modules['torch'] = None\n" + "".join(f"import {m}\n" for m in core)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", ["curate.cli", "train.cli", "train.sft", "train.grpo", "train.eval", "train.tiny"])
def test_commands_and_package_entry_points_load_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules, 'trl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["False", "False"]


def test_package_entry_points_resolve():
    """Each name a package __init__ exports (eagerly or lazily) is importable from it."""
    import importlib

    for module, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        package = importlib.import_module(module)
        for name in getattr(package, "__all__", []):
            assert getattr(package, name) is not None, (module, name)


GPU_MACHINE_LACKS = ("duckdb", "polars", "pyarrow", "trl", "datasets", "accelerate", "math_verify")


def as_on_the_gpu_machine(code: str) -> subprocess.CompletedProcess:
    """Run Python code with the libraries a lent GPU machine lacks made unimportable."""
    blocked = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in GPU_MACHINE_LACKS)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", blocked + code], capture_output=True, text=True, cwd=ROOT, env=env)


def test_gpu_benchmarks_need_only_torch_and_transformers():
    """bench/gpu_*.py run on a GPU machine that has torch and transformers alone: the
    modules they import must not reach DuckDB, Polars, PyArrow, TRL or math-verify."""
    code = "import curate.backends.base, curate.backends.hf, curate.backends.token_logprobs, train.sft.loss\n"
    result = as_on_the_gpu_machine(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("script", "args", "last_line"),
    [
        ("gpu_train_step.py", ["--quick"], "OXA / plain: step time x"),
        ("gpu_score.py", ["--quick", "--naive"], "naive one-at-a-time loop"),
    ],
)
def test_gpu_benchmarks_run_their_quick_configuration(script, args, last_line):
    """Each GPU check's smoke run on the CPU, so that a device session's few minutes are not lost to an API
    change (transformers 5.20 renamed gradient_checkpointing_enable and its keyword)."""
    code = f"import runpy\nsys.argv = [{script!r}, *{args!r}]\nrunpy.run_path('bench/{script}', run_name='__main__')\n"
    result = as_on_the_gpu_machine(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line in result.stdout, result.stdout[-2000:]


def test_the_select_benchmark_runs_on_a_small_pool(tmp_path):
    """bench/select_gaussian.py writes a workspace by hand: a change to part names or to
    how runs are recorded broke it twice unseen (its parts went unread, then it failed)."""
    command = [sys.executable, "bench/select_gaussian.py", "--rows", "20000", "--workdir", str(tmp_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    whole = result.stdout.split("whole run")[1]
    assert re.search(r"oxa select +[0-9.]+ +[0-9]+ +8,649\n", whole), whole  # the paper's settings on 20,000 rows
    assert "same selection: OK" in result.stdout and "subset version inputs" in result.stdout

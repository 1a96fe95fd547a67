"""The vLLM tests run in their own environment (.venv-vllm, built by .ci/vllm-env); in the
main one, which has no vLLM, they are skipped and nothing here acts.

The engine runs inside the test process (VLLM_ENABLE_V1_MULTIPROCESSING=0): vLLM's
default starts it in child processes that import vLLM again, about a minute on a busy
2-CPU machine. The backend fixture shuts the engine down, and the session ends with
os._exit: a normal interpreter exit after vLLM sometimes aborts ("terminate called
without an active exception", rc 134) after every test has passed.
"""

import importlib.util
import os
import sys

import pytest

if importlib.util.find_spec("vllm") is not None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def pytest_sessionfinish(session, exitstatus):
    session.config._oxa_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "vllm" in sys.modules and hasattr(config, "_oxa_exitstatus"):  # only where vLLM was really imported
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config._oxa_exitstatus)

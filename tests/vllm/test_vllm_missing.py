"""Where vLLM is not installed (the main environment), choosing it names the extra."""

import importlib.util

import pytest

from curate.workspace import MissingExtra


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_names_the_extra():
    from curate.backends import load_backend

    with pytest.raises(MissingExtra, match=r"pip install 'oxa\[vllm\]'"):
        load_backend("vllm", "no-model-needed")

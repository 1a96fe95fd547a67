"""The settings of `oxa synth model` (train.tiny.models), importable without torch so
the command line can show their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from curate.workspace import OxaError


@dataclass
class TinyModelConfig:
    """What `oxa synth model` builds; every field is also an option of the command."""

    world: str  # a folder made by `oxa synth world`
    out: str  # gets tokenizer-trained base/ and instruct/ model folders and build.json
    styles: list[str] = field(default_factory=lambda: ["terse", "worded"])  # styles the base model is pretrained on
    other_share: float = 0.02  # share of pretraining documents in the other styles (0: never seen)
    answer_only: float = 0.5  # share of pretraining documents that give the answer alone, with no worked reasoning
    seed: int = 0
    threads: int = 2  # CPU threads of the build: a fixed count keeps the sums in one order (the same weights)
    vocab_size: int = 1024  # BPE vocabulary, special and added tokens included
    hidden_size: int = 128
    heads: int = 4  # hidden_size / heads is the head size: vLLM's CPU attention needs >= 32
    kv_heads: int = 1  # key/value heads (grouped-query attention): a smaller KV cache, faster sampling
    layers: int = 2
    intermediate_size: int = 512
    max_positions: int = 1024
    block: int = 128  # pretraining sequence length (documents are packed)
    batch: int = 32  # sequences per step, in pretraining and SFT
    pretrain_steps: int = 600
    learning_rate: float = 3e-3
    instruct: bool = True  # also build the instruction-following model
    sft_examples: int = 2048  # corpus documents in the pretraining styles used for SFT
    sft_steps: int = 150
    sft_learning_rate: float = 1e-3

    def check(self, styles: list[str]) -> None:
        unknown = sorted(set(self.styles) - set(styles))
        if unknown or not self.styles:
            raise OxaError(
                f"--styles must name one or more of the world's styles ({', '.join(styles)}); got {self.styles}"
            )
        if not 0 <= self.other_share < 1:
            raise OxaError(f"--other-share is a share of the pretraining documents, in [0, 1); got {self.other_share}")
        if not 0 <= self.answer_only < 1:
            raise OxaError(f"--answer-only is a share of the pretraining documents, in [0, 1); got {self.answer_only}")
        if self.threads < 1:
            raise OxaError(f"--threads must be 1 or more; got {self.threads}")
        if self.pretrain_steps < 1 or self.sft_steps < 1:
            raise OxaError(f"steps must be 1 or more; got {self.pretrain_steps} (pretrain), {self.sft_steps} (SFT)")
        if self.kv_heads < 1 or self.heads % self.kv_heads:
            raise OxaError(f"--heads {self.heads} must be a multiple of --kv-heads {self.kv_heads} (1 or more)")
        if self.hidden_size % self.heads or self.hidden_size // self.heads < 32:
            raise OxaError(
                f"hidden size {self.hidden_size} over {self.heads} heads gives head size "
                f"{self.hidden_size / self.heads:g}; it must be a whole number of at least 32 "
                "(vLLM's CPU attention accepts nothing smaller): lower --heads or raise --hidden-size"
            )

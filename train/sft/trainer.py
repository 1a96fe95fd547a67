"""`OXATrainer`: TRL's SFTTrainer with the unlikelihood term (OXA_Full, paper Eq. 3-5).

Public API (stable; other modules build on it):
    OXATrainer(model, args=OXAConfig(...), train_dataset=..., processing_class=tokenizer, ...)
    - datasets: whatever SFTTrainer takes (conversational prompt/completion, messages, text) plus an
      integer `loss_type` column: 0 = promote (cross-entropy on the completion / assistant tokens
      TRL's labels select), 1 = suppress (unlikelihood on the same tokens);
    - `ul_global` (OXAConfig) > 0 with negatives present: train batches come from
      train.sft.ul_sampler.KNegativesSampler (exactly k negatives per global batch);
    - metrics next to TRL's (train/eval): ce_loss, ul_loss, weighted_ul_loss, neg_token_prob,
      entropy_pos, entropy_neg, entropy, num_tokens.

How it differs from SFTTrainer: the collator also emits `loss_type` (one per sequence) and
`sequence_index` (each token's sequence, padded or padding-free); `get_batch_samples` counts each
term's sequences and tokens over the step's micro-batches and all ranks, and `compute_loss` divides
by those global counts (train.sft.loss), so gradients summed over micro-batches and averaged over
ranks equal the global objective's. Log-probs come from curate.backends.token_logprobs inside the model's
forward (so DDP sees the call), never from full logits.
The chunked log-probs run inside a call of the lm-head module (curate.backends.token_logprobs.add_chunked_head),
so DeepSpeed ZeRO-3's hooks gather its partitioned weight for the forward and the backward.
Not supported: packing, context/sequence parallelism.
"""

from __future__ import annotations

import functools
import types
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from trl import SFTTrainer

from curate.backends.token_logprobs import add_chunked_head, final_hidden_states
from curate.workspace import OxaError
from train.sft.config import OXAConfig
from train.sft.loss import TermCounts, count_terms, oxa_loss
from train.sft.ul_sampler import KNegativesSampler


def add_oxa_head(model, chunk_size: int) -> None:
    """`model(..., labels=L, oxa_logprobs=True)` returns (TokenLogprobs, mask) of the loss tokens, chunked.

    Patched onto the forward (like TRL's fused head) so that DDP's forward hooks run; the chunked
    log-probs run inside a call of the lm-head module, so that DeepSpeed ZeRO-3 gathers its weight.
    """
    add_chunked_head(model, chunk_size)
    previous_forward = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, oxa_logprobs: bool = False, **kwargs):
        if not oxa_logprobs:
            return previous_forward(*args, **kwargs)
        labels = kwargs.pop("labels")
        hidden = final_hidden_states(self, **kwargs)[:, :-1]
        mask = labels[:, 1:] != -100
        return self.get_output_embeddings()(hidden[mask], labels[:, 1:][mask]), mask

    model.forward = types.MethodType(forward, model)


@dataclass
class OXACollator:
    """Wraps TRL's collator: adds `loss_type` (S,) and `sequence_index` (B, T), -1 on padding."""

    base: Any
    padding_free: bool

    def __call__(self, examples: list[dict]) -> dict:
        loss_type = torch.tensor([int(example["loss_type"]) for example in examples], dtype=torch.long)
        lengths = torch.tensor([len(example["input_ids"]) for example in examples])
        batch = self.base([{k: v for k, v in example.items() if k != "loss_type"} for example in examples])
        index = torch.full(batch["input_ids"].shape, -1, dtype=torch.long)
        if self.padding_free:
            flat = torch.repeat_interleave(torch.arange(len(examples)), lengths)
            index[0, : flat.numel()] = flat
        else:
            for row, length in enumerate(lengths.tolist()):
                index[row, :length] = row
            if "attention_mask" in batch and not torch.equal(batch["attention_mask"].bool(), index >= 0):
                raise OxaError("OXATrainer needs right-padded batches (TRL's collator); the collator padded otherwise")
        batch["loss_type"], batch["sequence_index"] = loss_type, index
        return batch


def check_oxa_dataset(dataset, args: OXAConfig, name: str = "train") -> Counter:
    """Counts of loss_type values; clear errors for a missing column, bad values, no positives, no negatives."""
    if not isinstance(dataset, Dataset):
        raise OxaError(
            f"the {name} dataset is a {type(dataset).__name__}; OXATrainer needs a map-style datasets.Dataset "
            "(the loss_type counts and the k-negatives sampler read the whole column): load it with load_dataset(...) "
            "without streaming, or Dataset.from_list"
        )
    columns = dataset.column_names
    if "loss_type" not in columns:
        raise OxaError(
            f"the {name} dataset has no loss_type column (columns: {columns}); give every row loss_type 0 "
            "(promote, cross-entropy) or 1 (suppress, unlikelihood), e.g. export the subset with `oxa export`"
        )
    counts = Counter(int(value) for value in dataset["loss_type"])
    unknown = sorted(set(counts) - {0, 1})
    if unknown:
        raise OxaError(f"loss_type must be 0 (promote) or 1 (suppress); the {name} dataset has {unknown}")
    if counts[0] == 0:
        raise OxaError(f"the {name} dataset has no positives (loss_type 0, {counts[1]} negatives); add promoted rows")
    if counts[1] == 0 and args.ul_alpha > 0 and name == "train":
        raise OxaError(
            f"ul_alpha={args.ul_alpha} but the train dataset has no negatives (loss_type 1); "
            "add suppressed rows or set ul_alpha=0 (OXA_MLE)"
        )
    return counts


class OXATrainer(SFTTrainer):
    """SFTTrainer whose loss is L_CE + alpha * L_UL, normalized over the global batch (see module doc)."""

    _tag_names = ["trl", "sft", "oxa"]
    loss_is_scaled_for_ga = True  # compute_loss divides by the step's global counts itself

    def __init__(self, model, args: OXAConfig | None = None, train_dataset=None, eval_dataset=None, **kwargs):
        if not isinstance(args, OXAConfig):
            raise OxaError(f"OXATrainer needs an OXAConfig, got {type(args).__name__}")
        self._dataset_counts = check_oxa_dataset(train_dataset, args)
        evals = eval_dataset if isinstance(eval_dataset, dict) else {"eval": eval_dataset} if eval_dataset else {}
        for name, dataset in evals.items():
            check_oxa_dataset(dataset, args, name)
        super().__init__(model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)
        self.data_collator = OXACollator(self.data_collator, self.padding_free)
        unwrapped = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        add_oxa_head(unwrapped, args.loss_chunk_size)
        self._step_counts: TermCounts | None = None
        self._step_micro_batches = 1
        if self._uses_k_negatives():
            global_batch = self._global_batch()
            if args.ul_global >= global_batch:
                raise OxaError(
                    f"ul_global={args.ul_global} does not fit in the global batch of {global_batch} (per-device "
                    f"{args.per_device_train_batch_size} x accumulation {args.gradient_accumulation_steps} x ranks "
                    f"{args.world_size}); lower ul_global or raise the batch"
                )

    def _global_batch(self) -> int:
        return self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size

    def _uses_k_negatives(self) -> bool:
        return bool(self.args.ul_global) and self._dataset_counts[1] > 0

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "loss_type" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "loss_type"]

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if not self._uses_k_negatives():
            return super()._get_train_sampler(dataset)
        sampler = KNegativesSampler(dataset["loss_type"], self._global_batch(), self.args.ul_global, self.args.seed)
        self.unused_per_epoch = {"positives": sampler.unused_positives, "negatives": sampler.unused_negatives}
        return sampler

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        local = torch.zeros(4, dtype=torch.float64, device=device)
        for batch in batch_samples:
            local += count_terms(batch["labels"], batch["sequence_index"], batch["loss_type"]).to(device)
        self._step_counts = TermCounts(self.accelerator.reduce(local, reduction="sum"))
        self._step_micro_batches = max(len(batch_samples), 1)
        return batch_samples, num_items_in_batch

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # The loss never builds the logits, so evaluation reports the loss (and the metrics) only.
        return super().prediction_step(model, inputs, True, ignore_keys)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise OxaError("OXATrainer computes no logits, so it returns no outputs; evaluate with the loss only")
        mode = "train" if self.model.training else "eval"
        loss_type, sequence_index = inputs.pop("loss_type"), inputs.pop("sequence_index")
        logprobs, mask = model(**inputs, oxa_logprobs=True)
        token_sequence = sequence_index[:, 1:][mask]
        if mode == "train":
            # Each rank holds its share of the global objective; DDP averages gradients over ranks.
            counts, scale = self._step_counts, self.accelerator.num_processes
            if counts is None:  # training_step called outside Trainer's loop: this batch is the whole step
                local = count_terms(inputs["labels"], sequence_index, loss_type)
                counts = TermCounts(self.accelerator.reduce(local, reduction="sum"))
        else:
            counts, scale = TermCounts(count_terms(inputs["labels"], sequence_index, loss_type)), 1
        args = self.args
        parts = oxa_loss(
            logprobs.logp, logprobs.log_complement, token_sequence, loss_type, counts, args.ul_alpha,
            args.ul_normalization, args.ul_floor, logprobs.entropy,
        )  # fmt: skip
        self._log_oxa_metrics(mode, parts, inputs)
        return parts.loss * scale

    def _log_oxa_metrics(self, mode: str, parts, inputs) -> None:
        local = torch.stack(
            [
                parts.ce,
                parts.ul,
                parts.positive_tokens.double(),
                parts.negative_tokens.double(),
                parts.negative_prob_sum,
                parts.positive_entropy_sum,
                parts.negative_entropy_sum,
            ]
        ).double()
        total = self.accelerator.reduce(local, reduction="sum").tolist()
        ce, ul, pos_tokens, neg_tokens, neg_prob, pos_entropy, neg_entropy = total
        # Train: shares of the step's objective, times the micro-batches so the logged mean is per step.
        # Eval: per-rank batch means, averaged over ranks.
        factor = self._step_micro_batches if mode == "train" else 1 / self.accelerator.num_processes
        metrics = self._metrics[mode]
        metrics["ce_loss"].append(ce * factor)
        metrics["ul_loss"].append(ul * factor)
        metrics["weighted_ul_loss"].append(self.args.ul_alpha * ul * factor)
        if neg_tokens > 0:
            metrics["neg_token_prob"].append(neg_prob / neg_tokens)
            metrics["entropy_neg"].append(neg_entropy / neg_tokens)
        if pos_tokens > 0:
            metrics["entropy_pos"].append(pos_entropy / pos_tokens)
        if pos_tokens + neg_tokens > 0:
            metrics["entropy"].append((pos_entropy + neg_entropy) / (pos_tokens + neg_tokens))
        if mode == "train":
            if "attention_mask" in inputs:
                local_tokens = inputs["attention_mask"].sum()
            else:
                local_tokens = torch.tensor(inputs["input_ids"].size(1), device=inputs["input_ids"].device)
            self._total_train_tokens += int(self.accelerator.reduce(local_tokens, reduction="sum").item())
        metrics["num_tokens"] = [self._total_train_tokens]

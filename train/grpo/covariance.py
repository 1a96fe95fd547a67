"""Clip-Cov and KL-Cov (Cui et al., 2025, "The Entropy Mechanism of Reinforcement Learning
for Reasoning Language Models"): which response tokens of a micro-batch lose their
policy-gradient loss (Clip-Cov) or get a KL penalty (KL-Cov), chosen by the centred
covariance of each token's log-probability and advantage.

The rules are verl's `compute_policy_loss_clip_cov` / `compute_policy_loss_kl_cov`
(verl/trainer/ppo/core_algos.py, adapted there from the authors' PRIME-RL/Entropy-Mechanism-of-RL);
the random choice among Clip-Cov candidates uses a seeded generator instead of the global one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

COV_MODES = ("none", "clip_cov", "kl_cov")


def token_covariance(log_probs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(A - mean A) x (log p - mean log p) per token, both means over the mask's tokens; 0 outside the mask.

    log_probs and mask are (B, T); advantages (B,) (one per completion, as GRPO's) or (B, T). Detached."""
    log_probs = log_probs.detach()
    advantages = advantages.detach()
    advantages = (advantages.unsqueeze(1) if advantages.dim() == 1 else advantages).expand_as(log_probs)
    mask = mask.to(log_probs.dtype)
    count = mask.sum().clamp(min=1.0)
    centred_advantages = advantages - (advantages * mask).sum() / count
    centred_log_probs = log_probs - (log_probs * mask).sum() / count
    return centred_advantages * centred_log_probs * mask


def select_clip_cov(
    covariance: torch.Tensor,
    mask: torch.Tensor,
    ppo_clipped: torch.Tensor,
    ratio: float,
    lower: float,
    upper: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The tokens Clip-Cov clips, a (B, T) bool mask: max(1, int(ratio x tokens)) chosen at random among the
    tokens whose covariance lies strictly between lower and upper and that PPO's clip has not already clipped."""
    import torch

    valid = mask.bool()
    candidates = (covariance > lower) & (covariance < upper) & valid & ~ppo_clipped.bool()
    flat = torch.nonzero(candidates.flatten()).squeeze(1)  # row-major, as verl's torch.nonzero
    count = max(int(ratio * valid.sum().item()), 1)
    order = torch.randperm(len(flat), generator=generator).to(flat.device)
    selected = torch.zeros(candidates.numel(), dtype=torch.bool, device=candidates.device)
    selected[flat[order[:count]]] = True
    return selected.view_as(candidates)


def select_kl_cov(covariance: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """The tokens KL-Cov penalizes, a (B, T) bool mask: the max(1, int(ratio x tokens)) largest covariances."""
    import torch

    valid = mask.bool().flatten()
    selected = torch.zeros_like(valid)
    tokens = int(valid.sum().item())
    if tokens:
        positions = torch.nonzero(valid).squeeze(1)
        top = torch.topk(covariance.flatten()[positions], max(1, int(tokens * ratio))).indices
        selected[positions[top]] = True
    return selected.view_as(mask)

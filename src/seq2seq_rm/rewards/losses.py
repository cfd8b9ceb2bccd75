"""Reward-model losses (pure functions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq_rm.data.layout import IGNORE_INDEX


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: float = 0.0,
                       center_coef: float = 0.0) -> torch.Tensor:
    """``mean(-log sigmoid(r_w - r_l - margin)) + center_coef * mean((r_w + r_l)^2)``."""
    loss = -F.logsigmoid(chosen - rejected - margin).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    return loss


def weighted_token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sequence MLE on target tokens: each token's cross-entropy weighted by its example's weight,
    averaged over the target tokens (``labels`` is IGNORE_INDEX elsewhere)."""
    shifted_logits, shifted_labels = logits[:, :-1].float(), labels[:, 1:]
    token_loss = F.cross_entropy(shifted_logits.transpose(1, 2), shifted_labels, ignore_index=IGNORE_INDEX,
                                 reduction="none")
    is_target = (shifted_labels != IGNORE_INDEX).float()
    token_weights = is_target * weights[:, None]
    return (token_loss * token_weights).sum() / token_weights.sum().clamp(min=1e-8)

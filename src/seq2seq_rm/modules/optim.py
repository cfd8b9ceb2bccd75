"""AdamW with linear warm-up and cosine decay, shared by every trained module."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def warmup_cosine(step: int, warmup_steps: int, max_steps: int, min_ratio: float = 0.1) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW's fused kernel (the same update up to float rounding; a third of the per-tensor loop's time, which is
    torch's default on CPU). Hugging Face's Trainer, and so TRL, uses it too."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)


def adamw_warmup_cosine(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, warmup_steps: int,
                        max_steps: int) -> dict:
    optimizer = adamw(params, lr, weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warmup_steps, max_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

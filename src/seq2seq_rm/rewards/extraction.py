"""Token-level rewards from what a seq2seq reward model would keep of a response (pure functions).

Each rule maps a response and the RM's view of it to one reward per response token:
- ``prefix`` (the paper's rule): positive until the first token the RM would change, negative from
  there on; if the RM would go on after the last token (content missing), the last token is negative.
- ``per_token``: each token judged on its own (kept -> positive, changed -> negative).
- ``decode``: the RM's greedy correction is aligned to the response with Levenshtein opcodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rapidfuzz.distance import Levenshtein


def align_token_rewards(response_ids: Sequence[int], corrected_ids: Sequence[int], r_pos: float,
                        r_neg: float) -> list[float]:
    """One reward per response token from a Levenshtein alignment of the response to its correction.

    ``equal`` tokens get ``+r_pos``; ``replace``d and ``delete``d tokens get ``-r_neg``; an
    ``insert`` (content the correction adds) puts ``-r_neg`` on the response token before the
    insertion point, or on the first token when the insertion is at the start.
    """
    rewards = [r_pos] * len(response_ids)
    if not response_ids:
        return rewards
    for tag, i1, i2, _, _ in Levenshtein.opcodes(list(response_ids), list(corrected_ids)):
        if tag in ("replace", "delete"):
            rewards[i1:i2] = [-r_neg] * (i2 - i1)
        elif tag == "insert":
            rewards[max(i1 - 1, 0)] = -r_neg
    return rewards


def prefix_rewards(agree: torch.Tensor, eos_agree: torch.Tensor, mask: torch.Tensor, r_pos: float,
                   r_neg: float) -> torch.Tensor:
    """``agree[b, t]``: the RM's argmax equals response token t; ``eos_agree[b]``: it would stop after
    the last token. Tokens before the first disagreement get ``+r_pos``; that one and later ``-r_neg``."""
    agree = agree.bool() | ~mask.bool()  # padding never breaks the prefix
    kept = torch.cumprod(agree.long(), dim=1).bool()
    rewards = torch.where(kept, torch.full_like(mask, r_pos, dtype=torch.float),
                          torch.full_like(mask, -r_neg, dtype=torch.float))
    last = (mask.sum(1) - 1).clamp(min=0).long()
    rows = torch.arange(mask.shape[0])
    missing_end = ~eos_agree.bool() & (mask.sum(1) > 0)
    rewards[rows[missing_end], last[missing_end]] = -r_neg
    return rewards * mask


def soft_prefix_rewards(p_keep: torch.Tensor, p_eos: torch.Tensor, mask: torch.Tensor, r_pos: float,
                        r_neg: float) -> torch.Tensor:
    """Probability-weighted ``prefix``: the chance the RM keeps every token up to t (its survival)
    weighs ``+r_pos`` against ``-r_neg``; the last token also carries the chance the RM stops there."""
    p_keep = torch.where(mask.bool(), p_keep, torch.ones_like(p_keep))
    survival = torch.cumprod(p_keep, dim=1)
    last = (mask.sum(1) - 1).clamp(min=0).long()
    rows = torch.arange(mask.shape[0])
    survival[rows, last] = survival[rows, last] * torch.where(mask.sum(1) > 0, p_eos, torch.ones_like(p_eos))
    return (r_pos * survival - r_neg * (1 - survival)) * mask


def per_token_rewards(agree: torch.Tensor, mask: torch.Tensor, r_pos: float, r_neg: float) -> torch.Tensor:
    return torch.where(agree.bool(), r_pos, -r_neg).float() * mask


def soft_per_token_rewards(p_keep: torch.Tensor, mask: torch.Tensor, r_pos: float, r_neg: float) -> torch.Tensor:
    return (r_pos * p_keep - r_neg * (1 - p_keep)) * mask


AGGREGATIONS = ("sum", "mean", "penalty", "cap")


def aggregate(rewards: torch.Tensor, mask: torch.Tensor, mode: str, cap: float = 1.0) -> torch.Tensor:
    """How a rule's per-token rewards add up over a response, and so what length incentive they carry.

    What a response of n tokens that the RM keeps entirely earns in total (``r_pos = 1``):
    - ``sum``: n (the paper-literal read-off: a copied response is paid its length);
    - ``mean``: 1 (every reward divided by n: a per-token average, no length incentive);
    - ``penalty``: 0 (kept tokens earn nothing; changed tokens and a missing end keep ``-r_neg``,
      so only what the RM would change counts, and a longer response can only lose);
    - ``cap``: min(n, cap) (positive rewards scaled so that their sum is at most ``cap``).
    """
    if mode == "sum":
        return rewards
    if mode == "mean":
        return rewards / mask.sum(1, keepdim=True).clamp(min=1)
    if mode == "penalty":
        return rewards.clamp(max=0)
    if mode == "cap":
        positive = rewards.clamp(min=0)
        total = positive.sum(1, keepdim=True)
        scale = torch.where(total > cap, cap / total.clamp(min=1e-8), torch.ones_like(total))
        return torch.where(rewards > 0, rewards * scale, rewards)
    raise ValueError(f"rm.reward.aggregation must be one of {list(AGGREGATIONS)}, got {mode!r}")

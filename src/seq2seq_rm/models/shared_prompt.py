"""Each prompt run once for the several sequences that continue it (a pair's two responses; a seq2seq RM's
correction and identity rewrites): its keys and values are computed once and repeated for each continuation."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def continuation_outputs(model: PreTrainedModel, field: str, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                         input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         position_ids: torch.Tensor | None = None, share_prompt: bool = True) -> torch.Tensor:
    """``model``'s output ``field`` (``last_hidden_state`` of a trunk, ``logits`` of a causal LM) over the
    continuations ``input_ids`` (right-padded), where prompt ``i`` (left-padded) is followed by the rows
    ``i*k .. i*k + k - 1``, ``k = len(input_ids) / len(prompt_ids)``.

    The continuations' ``position_ids`` default to following their prompt's last token. With ``share_prompt``
    each prompt runs once through ``model.base_model`` and its keys and values are repeated for its ``k`` rows:
    the outputs and gradients of the full sequences (up to float rounding), with a prompt's tokens computed
    once instead of ``k`` times. The full sequences run instead when ``share_prompt`` is false or under
    gradient checkpointing, which keeps no key-value cache. FSDP needs the full sequences too: the cached keys
    and values leave each block beside its output, so the gradient flowing back through them would reach a
    block whose parameters FSDP has not gathered again."""
    k = input_ids.shape[0] // prompt_ids.shape[0]
    prompt_positions = (prompt_mask.cumsum(1) - 1).clamp(min=0)  # left pads do not shift a row's positions
    if position_ids is None:
        position_ids = prompt_mask.sum(1, keepdim=True).repeat_interleave(k, 0) + attention_mask.cumsum(1) - 1
    mask = torch.cat([prompt_mask.repeat_interleave(k, 0), attention_mask], 1)
    if not share_prompt or getattr(model, "is_activation_checkpointing", False):
        ids = torch.cat([prompt_ids.repeat_interleave(k, 0), input_ids], 1)
        positions = torch.cat([prompt_positions.repeat_interleave(k, 0), position_ids], 1)
        output = model(input_ids=ids, attention_mask=mask, position_ids=positions)
        return getattr(output, field)[:, prompt_ids.shape[1]:]
    cache = model.base_model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=prompt_positions,
                             use_cache=True).cache
    cache.batch_repeat_interleave(k)
    output = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, cache=cache, use_cache=True)
    return getattr(output, field)

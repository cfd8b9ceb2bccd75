"""The last decoder block run only where a scalar head reads it.

A scalar head reads one position per sequence (its last token), so the last block needs its query, attention output,
MLP and the final norm there alone; only its keys and values are needed at every position. ``deferred_last_block``
runs the trunk with the last block (and final norm) left out and records what the block would have received;
``final_hidden_at`` then finishes the block at one position per row. Same outputs and gradients as the whole trunk
(up to float rounding), with most of one block's work saved: a quarter of a 4-block model, 1/L of an L-block one.

Written for the block layouts of GPT-2 and of Llama/Qwen2 (SmolLM2, Qwen2.5): ``supports`` says whether a trunk has
one of them and runs it plainly (no gradient checkpointing, no FSDP-sharded blocks, no sliding window); callers keep
the whole trunk otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.fsdp import FSDPModule
from transformers import PreTrainedModel
from transformers.models.llama.modeling_llama import rotate_half


@dataclass(frozen=True)
class _Layout:
    """Attribute names of a trunk's blocks and of the parts of a block."""

    blocks: str
    final_norm: str
    norm_before_attention: str
    attention: str
    attention_output: str
    norm_before_mlp: str


_GPT2 = _Layout("h", "ln_f", "ln_1", "attn", "c_proj", "ln_2")
_LLAMA = _Layout("layers", "norm", "input_layernorm", "self_attn", "o_proj", "post_attention_layernorm")
_LAYOUTS = {"gpt2": _GPT2, "llama": _LLAMA, "qwen2": _LLAMA}

Recorded = tuple[torch.Tensor, dict[str, Any]]  # the last block's input hidden states and keyword arguments


def supports(trunk: nn.Module) -> bool:
    """Whether ``trunk`` (a transformers base model) can run its last block at one position per row."""
    layout = _LAYOUTS.get(getattr(getattr(trunk, "config", None), "model_type", None))
    if layout is None or not isinstance(trunk, PreTrainedModel) or trunk.is_activation_checkpointing:
        return False
    block = getattr(trunk, layout.blocks)[-1]
    attention = getattr(block, layout.attention)
    # FSDP gathers a block's parameters only when the block itself is called; the block's parts are called here
    return not isinstance(block, FSDPModule) and getattr(attention, "sliding_window", None) is None


class _Recorder(nn.Module):
    """Stands in for the last block: keeps what it is given and passes the hidden states on unchanged."""

    def __init__(self, calls: list[Recorded]) -> None:
        super().__init__()
        self.calls = calls

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls.append((hidden_states, kwargs))
        return hidden_states


@contextmanager
def deferred_last_block(trunk: PreTrainedModel) -> Iterator[list[Recorded]]:
    """Inside the block, every call of ``trunk`` skips its last block and final norm and appends the last block's
    input to the yielded list (the trunk's own output is then not its final hidden state: finish with
    ``final_hidden_at``)."""
    layout = _LAYOUTS[trunk.config.model_type]
    blocks, calls = getattr(trunk, layout.blocks), []
    block, final_norm = blocks[-1], getattr(trunk, layout.final_norm)
    blocks[-1] = _Recorder(calls)
    setattr(trunk, layout.final_norm, nn.Identity())
    try:
        yield calls
    finally:
        blocks[-1] = block
        setattr(trunk, layout.final_norm, final_norm)


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    return x.view(*x.shape[:2], -1, head_dim).transpose(1, 2)  # (batch, heads, positions, head_dim)


def _rotated(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos.unsqueeze(1) + rotate_half(x) * sin.unsqueeze(1)


def _keys_values(model_type: str, attention: nn.Module, x: torch.Tensor,
                 kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    if model_type == "gpt2":
        _, keys, values = attention.c_attn(x).split(attention.split_size, dim=2)
        return _heads(keys, attention.head_dim), _heads(values, attention.head_dim)
    cos, sin = kwargs["position_embeddings"]
    keys = _rotated(_heads(attention.k_proj(x), attention.head_dim), cos, sin)
    return keys, _heads(attention.v_proj(x), attention.head_dim)


def _query(model_type: str, attention: nn.Module, x: torch.Tensor, kwargs: dict[str, Any],
           rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    if model_type == "gpt2":
        return _heads(attention.c_attn(x).split(attention.split_size, dim=2)[0], attention.head_dim)
    cos, sin = (t.expand(len(rows), -1, -1)[rows, index, None] for t in kwargs["position_embeddings"])  # may be 1 row
    return _rotated(_heads(attention.q_proj(x), attention.head_dim), cos, sin)


def final_hidden_at(trunk: PreTrainedModel, calls: list[Recorded], index: torch.Tensor,
                    key_mask: torch.Tensor) -> torch.Tensor:
    """The trunk's final hidden state at position ``index[b]`` of each row ``b`` of the last recorded call, shape
    (batch, hidden). The last block's keys and values come from every recorded call in order (a prompt run once,
    then its continuations: an earlier call's rows are repeated to the last call's batch, each ``batch / rows``
    times), concatenated along the sequence; ``key_mask`` (batch, all recorded positions) says which of them the
    query at ``index`` attends to: its own row's non-padding tokens up to and including itself."""
    model_type = trunk.config.model_type
    layout = _LAYOUTS[model_type]
    block = getattr(trunk, layout.blocks)[-1]
    attention = getattr(block, layout.attention)
    hidden, kwargs = calls[-1]
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    normed = [getattr(block, layout.norm_before_attention)(call_hidden) for call_hidden, _ in calls]
    keys, values = [], []
    for x, (_, call_kwargs) in zip(normed, calls, strict=True):
        k, v = _keys_values(model_type, attention, x, call_kwargs)
        repeats = hidden.shape[0] // x.shape[0]
        keys.append(k.repeat_interleave(repeats, 0))
        values.append(v.repeat_interleave(repeats, 0))
    keys, values = torch.cat(keys, 2), torch.cat(values, 2)
    residual = hidden[rows, index].unsqueeze(1)  # (batch, 1, hidden)
    query = _query(model_type, attention, normed[-1][rows, index].unsqueeze(1), kwargs, rows, index)
    groups = query.shape[1] // keys.shape[1]  # grouped-query attention: each key head serves `groups` query heads
    dropout = getattr(attention, "attention_dropout", getattr(getattr(attention, "attn_dropout", None), "p", 0.0))
    attended = F.scaled_dot_product_attention(
        query, keys.repeat_interleave(groups, 1), values.repeat_interleave(groups, 1),
        attn_mask=key_mask.bool()[:, None, None, :], dropout_p=dropout if attention.training else 0.0,
        scale=attention.scaling)
    attended = getattr(attention, layout.attention_output)(attended.transpose(1, 2).reshape(*residual.shape[:2], -1))
    hidden_at = residual + getattr(attention, "resid_dropout", nn.Identity())(attended)
    hidden_at = hidden_at + block.mlp(getattr(block, layout.norm_before_mlp)(hidden_at))
    return getattr(trunk, layout.final_norm)(hidden_at).squeeze(1)

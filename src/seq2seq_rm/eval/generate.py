"""Batched generation: token contexts -> continuations (left-padded, KV cache), and policy responses."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.data.layout import policy_prompt
from seq2seq_rm.data.tokenizer import SpecialIds, encode, special_ids


@torch.no_grad()
def generate_continuations(
    model: PreTrainedModel,
    contexts: list[list[int]],
    ids: SpecialIds,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    batch_size: int = 64,
) -> list[list[int]]:
    """Continue each context until ``<eos>`` (excluded from the result) or ``max_new_tokens``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sampling = {"do_sample": True, "temperature": temperature, "top_k": top_k} if do_sample else {"do_sample": False}
    out_rows: list[list[int]] = []
    for start in range(0, len(contexts), batch_size):
        chunk = contexts[start:start + batch_size]
        width = max(len(c) for c in chunk)
        input_ids = torch.full((len(chunk), width), ids.pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for i, c in enumerate(chunk):  # left padding: every row ends at the same position
            input_ids[i, width - len(c):] = torch.tensor(c)
            attention_mask[i, width - len(c):] = 1
        out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                             max_new_tokens=max_new_tokens, pad_token_id=ids.pad, eos_token_id=ids.eos, **sampling)
        for row in out[:, width:].tolist():
            out_rows.append(row[: row.index(ids.eos)] if ids.eos in row else row)
    if was_training:
        model.train()
    return out_rows


def generate_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    batch_size: int = 64,
) -> list[str]:
    ids = special_ids(tokenizer)
    contexts = [policy_prompt(encode(tokenizer, p), ids) for p in prompts]
    rows = generate_continuations(model, contexts, ids, max_new_tokens, do_sample, temperature, top_k, batch_size)
    return [tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]

"""Batched generation: token contexts -> continuations (left-padded, KV cache), and policy responses."""

from __future__ import annotations

import inspect

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.data.layout import left_pad, policy_prompt
from seq2seq_rm.data.tokenizer import SpecialIds, encode_prompt, special_ids


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
    synced_gpus: bool = False,
) -> list[list[int]]:
    """Continue each context until ``<eos>`` (excluded from the result) or ``max_new_tokens``.
    ``synced_gpus``: every rank keeps stepping until all are done (needed when ranks hold weight shards)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sampling = {"do_sample": True, "temperature": temperature, "top_k": top_k} if do_sample else {"do_sample": False}
    out_rows: list[list[int]] = []
    for start in range(0, len(contexts), batch_size):
        input_ids, attention_mask = left_pad(contexts[start:start + batch_size], ids.pad)
        width = input_ids.shape[1]
        out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                             max_new_tokens=max_new_tokens, pad_token_id=ids.pad, eos_token_id=ids.eos,
                             synced_gpus=synced_gpus, **sampling)
        for row in out[:, width:].tolist():
            out_rows.append(row[: row.index(ids.eos)] if ids.eos in row else row)
    if was_training:
        model.train()
    return out_rows


@torch.no_grad()
def greedy_continuations_at(
    model: PreTrainedModel,
    contexts: list[list[int]],
    positions: list[list[int]],
    ids: SpecialIds,
    max_new_tokens: int,
    batch_size: int = 64,
) -> list[list[int]]:
    """Greedy continuations of contexts that carry their own position ids (the seq2seq RM's aligned
    rewrite layout); each new token sits one position after the one before it. ``generate`` cannot
    be given such positions, hence this small KV-cached loop."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # transformers 5.2x renamed past_key_values to cache
    cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out_rows: list[list[int]] = []
    for start in range(0, len(contexts), batch_size):
        input_ids, mask = (t.to(device) for t in left_pad(contexts[start:start + batch_size], ids.pad))
        position_ids = left_pad(positions[start:start + batch_size], 0)[0].to(device)
        rows: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
        past = None
        for _ in range(max_new_tokens):
            output = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                           use_cache=True, **{cache_name: past})
            past = getattr(output, cache_name)
            next_ids = output.logits[:, -1].argmax(-1)
            for i, token in enumerate(next_ids.tolist()):
                if not done[i] and token != ids.eos:
                    rows[i].append(token)
            done |= next_ids == ids.eos
            if bool(done.all()):
                break
            input_ids, position_ids = next_ids[:, None], position_ids[:, -1:] + 1
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out_rows.extend(rows)
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
    synced_gpus: bool = False,
) -> list[str]:
    ids = special_ids(tokenizer)
    contexts = [policy_prompt(encode_prompt(tokenizer, p), ids) for p in prompts]
    rows = generate_continuations(model, contexts, ids, max_new_tokens, do_sample, temperature, top_k, batch_size,
                                  synced_gpus)
    return [tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]

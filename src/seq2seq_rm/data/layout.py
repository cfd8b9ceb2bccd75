"""Sequence layouts: ``prompt <sep> response <eos>`` for the policy."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seq2seq_rm.data.tokenizer import SpecialIds

IGNORE_INDEX = -100


def policy_prompt(prompt_ids: Sequence[int], ids: SpecialIds) -> list[int]:
    return [*prompt_ids, ids.sep]


def sft_example(prompt_ids: Sequence[int], response_ids: Sequence[int], ids: SpecialIds) -> dict[str, list[int]]:
    """Input ids and labels with the loss on response tokens (and the closing ``<eos>``) only."""
    context = policy_prompt(prompt_ids, ids)
    target = [*response_ids, ids.eos]
    return {"input_ids": context + target, "labels": [IGNORE_INDEX] * len(context) + target}


def pad_batch(rows: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids`` (with ``pad_id``), ``labels`` (with IGNORE_INDEX) and, if the rows have
    them, ``position_ids`` (with 0); add the mask."""
    width = max(len(r["input_ids"]) for r in rows)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
        "labels": torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long),
    }
    if "position_ids" in rows[0]:
        batch["position_ids"] = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        batch["input_ids"][i, :n] = torch.tensor(row["input_ids"])
        batch["attention_mask"][i, :n] = 1
        batch["labels"][i, :n] = torch.tensor(row["labels"])
        if "position_ids" in batch:
            batch["position_ids"][i, :n] = torch.tensor(row["position_ids"])
    return batch


def scored_response(response_ids: Sequence[int], ids: SpecialIds) -> list[int]:
    """``response <eos>``: what follows ``policy_prompt`` in a scored sequence."""
    return [*response_ids, ids.eos]


def scored_sequence(prompt_ids: Sequence[int], response_ids: Sequence[int], ids: SpecialIds) -> list[int]:
    """``prompt <sep> response <eos>``: a scalar RM reads its score at the closing ``<eos>``."""
    return policy_prompt(prompt_ids, ids) + scored_response(response_ids, ids)


def rewrite_context(prompt_ids: Sequence[int], source_ids: Sequence[int], ids: SpecialIds) -> list[int]:
    """``prompt <sep> source <fb>``: what a seq2seq RM reads before writing its rewrite."""
    return [*prompt_ids, ids.sep, *source_ids, ids.fb]


def rewrite_positions(prompt_len: int, source_len: int, target_len: int) -> list[int]:
    """Aligned position ids of ``prompt <sep> source <fb> target <eos>``: ``<fb>`` takes the position of
    ``<sep>`` and target token j that of source token j, so that keeping a token is a lookup of the
    source token one position ahead. A small model trained from scratch has no induction heads to
    find its place in a source of repeated words; with plain positions the 2x96 seq2seq RM kept
    regenerating the summary from the document instead of copying the response it judges."""
    prompt = list(range(prompt_len + 1))  # prompt and <sep>
    return prompt + [prompt_len + 1 + i for i in range(source_len)] + [prompt_len] + \
        [prompt_len + 1 + j for j in range(target_len + 1)]  # <fb>, target, <eos>


def rewrite_example(prompt_ids: Sequence[int], source_ids: Sequence[int], target_ids: Sequence[int],
                    ids: SpecialIds, aligned_positions: bool = False) -> dict[str, list[int]]:
    """``prompt <sep> source <fb> target <eos>`` with the loss on ``target <eos>`` only (and
    ``position_ids`` from ``rewrite_positions`` when ``aligned_positions``)."""
    context = rewrite_context(prompt_ids, source_ids, ids)
    target = [*target_ids, ids.eos]
    row = {"input_ids": context + target, "labels": [IGNORE_INDEX] * len(context) + target}
    if aligned_positions:
        row["position_ids"] = rewrite_positions(len(prompt_ids), len(source_ids), len(target_ids))
    return row


def right_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask."""
    width = max((len(s) for s in sequences), default=0)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return input_ids, mask


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask: every row ends at the same position, as generation needs."""
    width = max((len(s) for s in sequences), default=0)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if s:
            input_ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
    return input_ids, mask

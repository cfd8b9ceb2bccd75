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
    """Right-pad ``input_ids`` (with ``pad_id``) and ``labels`` (with IGNORE_INDEX); add the mask."""
    width = max(len(r["input_ids"]) for r in rows)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
        "labels": torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long),
    }
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        batch["input_ids"][i, :n] = torch.tensor(row["input_ids"])
        batch["attention_mask"][i, :n] = 1
        batch["labels"][i, :n] = torch.tensor(row["labels"])
    return batch

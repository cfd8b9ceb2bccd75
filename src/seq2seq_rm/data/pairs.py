"""Preference pairs -> token ids, with a documented policy for bad pairs, and the RM data module.

Bad pairs (``data.on_bad_pair``): identical chosen and rejected (no preference to learn), an
empty response, or a pair whose longest sequence exceeds the model's context (truncation would
cut the very tokens that decide the label). ``skip`` drops and counts them; ``error`` stops with
the pair's split, index and reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from seq2seq_rm.data.layout import left_pad, pad_batch, policy_prompt, rewrite_example, right_pad, scored_response
from seq2seq_rm.data.tokenizer import SpecialIds, encode, encode_prompt, special_ids
from seq2seq_rm.errors import ConfigError, DataError
from seq2seq_rm.tasks.base import PreferencePair

BAD_PAIR_POLICIES = ("skip", "error")


@dataclass  # not frozen: Lightning moves batches with apply_to_collection
class EncodedPair:
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


def bad_pair_reason(pair: EncodedPair, max_length: int) -> str | None:
    if pair.chosen == pair.rejected:
        return "identical"
    if not pair.chosen or not pair.rejected:
        return "empty_response"
    longest = len(pair.prompt) + 2 * max(len(pair.chosen), len(pair.rejected)) + 2  # rewrite layout
    if longest > max_length:
        return "too_long"
    return None


def encode_pairs(pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerBase, max_length: int,
                 on_bad_pair: str = "skip", split: str = "train") -> tuple[list[EncodedPair], Counter]:
    if on_bad_pair not in BAD_PAIR_POLICIES:
        raise ConfigError(f"data.on_bad_pair must be one of {list(BAD_PAIR_POLICIES)}, got {on_bad_pair!r}")
    kept, bad = [], Counter()
    for i, pair in enumerate(pairs):
        encoded = EncodedPair(encode_prompt(tokenizer, pair.prompt.text), encode(tokenizer, pair.chosen),
                              encode(tokenizer, pair.rejected))
        reason = bad_pair_reason(encoded, max_length)
        if reason is None:
            kept.append(encoded)
        elif on_bad_pair == "error":
            raise DataError(f"{split} preference pair {i} is bad ({reason}); set data.on_bad_pair=skip to "
                             f"drop such pairs: prompt={pair.prompt.text[:80]!r}")
        else:
            bad[reason] += 1
    return kept, bad


def collate_scalar(pairs: list[EncodedPair], ids: SpecialIds) -> dict[str, torch.Tensor]:
    """Each pair's ``prompt <sep>`` once (left-padded, so every prompt ends where its responses start) and its
    two ``response <eos>`` (right-padded), chosen in row ``2i`` and rejected in row ``2i + 1``: the scalar RM
    runs each prompt once for both responses (``ScalarHeadModel.score_responses``)."""
    prompt_ids, prompt_mask = left_pad([policy_prompt(p.prompt, ids) for p in pairs], ids.pad)
    responses = [scored_response(response, ids) for p in pairs for response in (p.chosen, p.rejected)]
    response_ids, response_mask = right_pad(responses, ids.pad)
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
            "response_ids": response_ids, "response_mask": response_mask}


def collate_rewrite(pairs: list[EncodedPair], ids: SpecialIds, identity_weight: float,
                    aligned_positions: bool = False) -> dict[str, torch.Tensor]:
    """Each pair's ``prompt <sep>`` once (left-padded) and, in the rows after it, its correction
    ``y_l <fb> y_w <eos>`` and (when ``identity_weight`` > 0) identity ``y_w <fb> y_w <eos>`` continuations
    (right-padded, with per-row weights and ``position_ids`` when ``aligned_positions``): the seq2seq RM
    runs each prompt once for both (``continuation_outputs``)."""
    prompts, rows, weights, is_correction = [], [], [], []
    for p in pairs:
        prompt = policy_prompt(p.prompt, ids)
        prompts.append(prompt)
        examples = [(p.rejected, 1.0, True)]  # (source, weight, is it the correction)
        if identity_weight > 0:
            examples.append((p.chosen, identity_weight, False))
        for source, weight, correction in examples:
            row = rewrite_example(p.prompt, source, p.chosen, ids, aligned_positions)
            rows.append({key: values[len(prompt):] for key, values in row.items()})  # the prompt is shared
            weights.append(weight)
            is_correction.append(correction)
    batch = pad_batch(rows, ids.pad)
    batch["prompt_ids"], batch["prompt_mask"] = left_pad(prompts, ids.pad)
    batch["weights"] = torch.tensor(weights)
    batch["is_correction"] = torch.tensor(is_correction)
    return batch


class PairDataModule(L.LightningDataModule):
    """Batches of encoded pairs, collated for the scalar (``scalar``) or the seq2seq (``rewrite``) RM."""

    def __init__(self, train: list[EncodedPair], val: list[EncodedPair], tokenizer: PreTrainedTokenizerBase,
                 layout: str, batch_size: int, identity_weight: float = 1.0, seed: int = 0,
                 aligned_positions: bool = False) -> None:
        super().__init__()
        self.train, self.val, self.batch_size, self.seed = train, val, batch_size, seed
        ids = special_ids(tokenizer)
        if layout == "scalar":
            self.collate = partial(collate_scalar, ids=ids)
        elif layout == "rewrite":
            self.collate = partial(collate_rewrite, ids=ids, identity_weight=identity_weight,
                                   aligned_positions=aligned_positions)
        else:
            raise ValueError(f"unknown pair layout {layout!r}; valid: ['scalar', 'rewrite']")

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, generator=generator,
                          collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        # validation also scores the raw pairs through the reward interface
        return DataLoader(self.val, batch_size=self.batch_size, collate_fn=partial(_with_pairs, self.collate))


def _with_pairs(collate, pairs: list[EncodedPair]) -> dict:
    return {"pairs": pairs, **collate(pairs)}

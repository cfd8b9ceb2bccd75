"""One reward interface for PPO and evaluation: per-token rewards for (prompt, response) token ids.

``token_rewards(prompts, responses)`` returns a float tensor of shape (batch, width) with
``width = max(1, longest response)``; entry t is the reward of response token t (zero past the end).
A reward "on the last token" of an empty response sits at position 0, the end-of-response action.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.data.layout import (
    rewrite_context,
    rewrite_example,
    rewrite_positions,
    right_pad,
    scored_sequence,
)
from seq2seq_rm.data.tokenizer import SpecialIds
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.models.backbone import load_backbone
from seq2seq_rm.models.generation import generate_continuations, greedy_continuations_at
from seq2seq_rm.models.heads import CheckpointError, ScalarHeadModel, load_scalar_head, read_rm_type
from seq2seq_rm.rewards.extraction import (
    AGGREGATIONS,
    aggregate,
    align_token_rewards,
    per_token_rewards,
    prefix_rewards,
    soft_per_token_rewards,
    soft_prefix_rewards,
)
from seq2seq_rm.tasks.base import Task

EXTRACTIONS = ("prefix", "per_token", "decode")


def response_mask(responses: list[list[int]]) -> torch.Tensor:
    width = max([1, *map(len, responses)])
    return torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in responses], dtype=torch.float)


def on_last_token(scores: torch.Tensor, responses: list[list[int]]) -> torch.Tensor:
    rewards = torch.zeros(len(responses), max([1, *map(len, responses)]))
    last = torch.tensor([max(len(r) - 1, 0) for r in responses])
    rewards[torch.arange(len(responses)), last] = scores.float()
    return rewards


class RewardFunction(ABC):
    @abstractmethod
    def token_rewards(self, prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor: ...

    def total_rewards(self, prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        return self.token_rewards(prompts, responses).sum(1)


def fit_length_trend(scores: torch.Tensor, lengths: torch.Tensor) -> tuple[float, float]:
    """Least-squares line ``score ~ slope * length + intercept`` (the length-decorrelation baseline)."""
    x, y = lengths.double(), scores.double()
    var = ((x - x.mean()) ** 2).mean()
    slope = float(((x - x.mean()) * (y - y.mean())).mean() / var) if var > 0 else 0.0
    return slope, float(y.mean() - slope * x.mean())


def length_adjusted(scores: torch.Tensor, lengths: torch.Tensor, length_penalty: float = 0.0,
                    length_trend: tuple[float, float] | None = None) -> torch.Tensor:
    """Scalar-RM baselines against length bias: ``score - length_penalty * length``, and/or the score
    minus its linear fit on length (``length_trend`` = slope, intercept over the RM's own training responses)."""
    lengths = lengths.to(scores.dtype)
    out = scores - length_penalty * lengths
    if length_trend is not None:
        slope, intercept = length_trend
        out = out - (slope * lengths + intercept)
    return out


class ScalarReward(RewardFunction):
    """The Bradley-Terry score of ``prompt <sep> response <eos>``, on the last response token;
    optionally length-adjusted (``length_adjusted``: the length-penalty and length-decorrelated baselines)."""

    def __init__(self, model: ScalarHeadModel, ids: SpecialIds, batch_size: int = 64, length_penalty: float = 0.0,
                 length_trend: tuple[float, float] | None = None) -> None:
        self.model, self.ids, self.batch_size = model, ids, batch_size
        self.length_penalty, self.length_trend = length_penalty, length_trend

    @torch.no_grad()
    def scores(self, prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        out = []
        for start in range(0, len(prompts), self.batch_size):
            sequences = [scored_sequence(p, r, self.ids) for p, r in
                         zip(prompts[start:start + self.batch_size], responses[start:start + self.batch_size],
                             strict=True)]
            input_ids, mask = right_pad(sequences, self.ids.pad)
            device = next(self.model.parameters()).device
            out.append(self.model.score_last(input_ids.to(device), mask.to(device)).cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def token_rewards(self, prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        scores = self.scores(prompts, responses)
        if self.length_penalty or self.length_trend is not None:
            lengths = torch.tensor([len(r) for r in responses])
            scores = length_adjusted(scores, lengths, self.length_penalty, self.length_trend)
        return on_last_token(scores, responses)


class Seq2seqReward(RewardFunction):
    """Token rewards from what the seq2seq RM would keep of the response (DESIGN section 1).

    ``extraction``: ``prefix`` | ``per_token`` (one teacher-forced pass over
    ``prompt <sep> y <fb> y <eos>``) | ``decode`` (greedy rewrite aligned to y). ``soft`` weighs
    by the probability the RM gives each kept token (prefix and per_token only); with ``soft``,
    ``penalty`` keeps only the negative part of ``r_pos * p - r_neg * (1 - p)``.
    ``aggregation``: ``sum`` | ``mean`` | ``penalty`` | ``cap`` (``extraction.aggregate``: what a
    fully kept response of n tokens earns, n / 1 / 0 / min(n, pos_cap)).
    ``aligned_positions``: the RM was trained with ``rewrite_positions`` (it must be read the same way).
    """

    def __init__(self, model: PreTrainedModel, ids: SpecialIds, extraction: str = "prefix", r_pos: float = 1.0,
                 r_neg: float = 1.0, aggregation: str = "sum", pos_cap: float = 1.0, soft: bool = False,
                 batch_size: int = 64, max_rewrite_tokens: int = 64, aligned_positions: bool = False) -> None:
        if extraction not in EXTRACTIONS:
            raise ConfigError(f"rm.extraction must be one of {list(EXTRACTIONS)}, got {extraction!r}")
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"rm.reward.aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
        if soft and extraction == "decode":
            raise ConfigError("rm.soft applies to the prefix and per_token rules, not to decode")
        self.model, self.ids, self.extraction, self.soft = model, ids, extraction, soft
        self.r_pos, self.r_neg, self.aggregation, self.pos_cap = r_pos, r_neg, aggregation, pos_cap
        self.batch_size, self.max_rewrite_tokens = batch_size, max_rewrite_tokens
        self.aligned_positions = aligned_positions

    @torch.no_grad()
    def keep_statistics(self, prompts: list[list[int]], responses: list[list[int]]) -> dict[str, torch.Tensor]:
        """Teacher-forced over ``prompt <sep> y <fb> y <eos>``: for each token of y, whether the RM's
        argmax keeps it and with what probability; the same for stopping after the last token.
        One forward pass per batch; the predictions of the target tokens are gathered for all rows at
        once, and only those positions go through the softmax."""
        width = max([1, *map(len, responses)])
        agree, p_keep = torch.zeros(len(responses), width), torch.zeros(len(responses), width)
        eos_agree, p_eos = torch.zeros(len(responses)), torch.zeros(len(responses))
        device = next(self.model.parameters()).device
        for start in range(0, len(prompts), self.batch_size):
            batch = responses[start:start + self.batch_size]
            examples = [rewrite_example(p, r, r, self.ids, self.aligned_positions) for p, r in
                        zip(prompts[start:start + self.batch_size], batch, strict=True)]
            rows = [e["input_ids"] for e in examples]
            input_ids, mask = right_pad(rows, self.ids.pad)
            positioned = {"position_ids": right_pad([e["position_ids"] for e in examples], 0)[0].to(device)} \
                if self.aligned_positions else {}
            logits = self.model(input_ids=input_ids.to(device), attention_mask=mask.to(device), **positioned).logits
            # row b predicts its n_b target tokens and <eos> from positions first_b - 1 ... first_b + n_b - 1,
            # where first_b = len(row) - n_b - 1 is the position of the first target token
            lengths = torch.tensor([len(r) for r in batch])
            steps = torch.arange(width + 1)
            valid = steps[None, :] <= lengths[:, None]  # n_b targets and the <eos> after them
            firsts = torch.tensor([len(row) for row in rows]) - lengths - 1
            positions = (firsts[:, None] - 1 + steps[None, :]).clamp(max=input_ids.shape[1] - 1)
            targets = torch.tensor([[*r, self.ids.eos] + [self.ids.pad] * (width - len(r)) for r in batch])
            picked = logits.gather(1, positions.to(device)[..., None].expand(-1, -1, logits.shape[-1]))
            logprobs = picked.float().log_softmax(-1).cpu()
            hits = (logprobs.argmax(-1) == targets) & valid
            probs = logprobs.gather(2, targets[..., None]).squeeze(2).exp() * valid
            rows_in_batch, in_response = torch.arange(len(batch)), steps[None, :width] < lengths[:, None]
            agree[start:start + len(batch)] = (hits[:, :width] & in_response).float()
            p_keep[start:start + len(batch)] = probs[:, :width] * in_response
            eos_agree[start:start + len(batch)] = hits[rows_in_batch, lengths].float()
            p_eos[start:start + len(batch)] = probs[rows_in_batch, lengths]
        return {"agree": agree, "p_keep": p_keep, "eos_agree": eos_agree, "p_eos": p_eos}

    def rewrites(self, prompts: list[list[int]], responses: list[list[int]]) -> list[list[int]]:
        """The RM's greedy rewrite of each response."""
        contexts = [rewrite_context(p, r, self.ids) for p, r in zip(prompts, responses, strict=True)]
        max_new_tokens = max(self.max_rewrite_tokens, max([0, *map(len, responses)]) + 8)
        if self.aligned_positions:
            positions = [rewrite_positions(len(p), len(r), 0)[:-1] for p, r in zip(prompts, responses, strict=True)]
            return greedy_continuations_at(self.model, contexts, positions, self.ids, max_new_tokens, self.batch_size)
        return generate_continuations(self.model, contexts, self.ids, max_new_tokens, batch_size=self.batch_size)

    def token_rewards(self, prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        mask = response_mask(responses)
        empty = mask.sum(1) == 0
        if self.extraction == "decode":
            rewrites = self.rewrites(prompts, responses)
            rows = [align_token_rewards(r, c, self.r_pos, self.r_neg) for r, c in zip(responses, rewrites, strict=True)]
            rewards = torch.zeros_like(mask)
            for i, row in enumerate(rows):
                rewards[i, : len(row)] = torch.tensor(row)
            stops = torch.tensor([float(not c) for c in rewrites])
        else:
            stats = self.keep_statistics(prompts, responses)
            if self.extraction == "prefix" and self.soft:
                rewards = soft_prefix_rewards(stats["p_keep"], stats["p_eos"], mask, self.r_pos, self.r_neg)
            elif self.extraction == "prefix":
                rewards = prefix_rewards(stats["agree"], stats["eos_agree"], mask, self.r_pos, self.r_neg)
            elif self.soft:
                rewards = soft_per_token_rewards(stats["p_keep"], mask, self.r_pos, self.r_neg)
            else:
                rewards = per_token_rewards(stats["agree"], mask, self.r_pos, self.r_neg)
            stops = stats["p_eos"] if self.soft else stats["eos_agree"]
        # an empty response is judged at its end-of-response action (position 0): +r_pos where the RM would
        # stop too, -r_neg where it would write something (content missing), never a free 0
        rewards[empty, 0] = (self.r_pos * stops - self.r_neg * (1 - stops))[empty]
        return aggregate(rewards, mask, self.aggregation, self.pos_cap)


class GoldReward(RewardFunction):
    """The task's gold utility on the last token: an oracle for sanity checks of PPO, never a default."""

    def __init__(self, task: Task, tokenizer: PreTrainedTokenizerBase) -> None:
        self.task, self.tokenizer = task, tokenizer

    def token_rewards(self, prompts: list[list[int]], responses: list[list[int]]) -> torch.Tensor:
        decode = self.tokenizer.decode
        utilities = [self.task.judge(decode(p, skip_special_tokens=True), decode(r, skip_special_tokens=True)).utility
                     for p, r in zip(prompts, responses, strict=True)]
        return on_last_token(torch.tensor(utilities), responses)


def load_reward_model(directory: Path, expected_type: str) -> PreTrainedModel | ScalarHeadModel:
    """Load a trained RM's weights, refusing a checkpoint of another RM type with a clear message."""
    found = read_rm_type(directory)
    if found != expected_type:
        raise CheckpointError(f"{directory} holds a {found!r} reward model, but rm.type is {expected_type!r}")
    return (load_scalar_head(directory) if found == "scalar" else load_backbone(directory)).eval()


def load_reward_function(directory: Path, expected_type: str, ids: SpecialIds, **options) -> RewardFunction:
    """A trained RM read with ``options`` (Seq2seqReward's read-off, or ScalarReward's length adjustments)."""
    model = load_reward_model(directory, expected_type)
    if expected_type == "scalar":
        return ScalarReward(model, ids, **options)
    return Seq2seqReward(model, ids, **options)

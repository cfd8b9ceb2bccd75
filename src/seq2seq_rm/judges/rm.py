"""A held-out scalar reward model as a pairwise judge: the higher score wins."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from seq2seq_rm.data.tokenizer import encode, encode_prompt, special_ids
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.judges.base import PairwiseJudge, verdict_from_scores
from seq2seq_rm.models.heads import load_scalar_head, read_rm_type
from seq2seq_rm.rewards.interface import ScalarReward


class RewardModelJudge(PairwiseJudge):
    name = "rm"

    def __init__(self, reward: ScalarReward, tokenizer: PreTrainedTokenizerBase) -> None:
        self.reward, self.tokenizer = reward, tokenizer

    @classmethod
    def from_directory(cls, directory: str | Path) -> RewardModelJudge:
        """A scalar RM checkpoint (a finished ``rm_scalar`` artifact or the judge stage's), with its tokenizer."""
        directory = Path(directory)
        found = read_rm_type(directory)
        if found != "scalar":
            raise ConfigError(f"judge.path {directory} holds a {found!r} reward model; judge=rm needs a scalar one")
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(ScalarReward(load_scalar_head(directory).eval(), special_ids(tokenizer)), tokenizer)

    def compare(self, prompts: list[str], responses_a: list[str], responses_b: list[str]) -> list[float]:
        prompt_ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        scores = self.reward.scores(prompt_ids + prompt_ids,
                                    [encode(self.tokenizer, r) for r in [*responses_a, *responses_b]]).tolist()
        n = len(prompts)
        return [verdict_from_scores(a, b) for a, b in zip(scores[:n], scores[n:], strict=True)]

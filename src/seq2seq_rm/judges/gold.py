"""The embedded task's gold judge as a pairwise judge: the higher gold utility wins."""

from __future__ import annotations

from seq2seq_rm.errors import ConfigError
from seq2seq_rm.judges.base import PairwiseJudge, verdict_from_scores
from seq2seq_rm.tasks.base import Task


class GoldJudge(PairwiseJudge):
    name = "gold"

    def __init__(self, task: Task) -> None:
        if not task.has_gold_judge:
            raise ConfigError(f"task {task.name} has no gold judge: use judge=rm or judge=api")
        self.task = task

    def compare(self, prompts: list[str], responses_a: list[str], responses_b: list[str]) -> list[float]:
        judge = self.task.judge
        return [verdict_from_scores(judge(p, a).utility, judge(p, b).utility)
                for p, a, b in zip(prompts, responses_a, responses_b, strict=True)]

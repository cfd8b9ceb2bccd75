"""One pairwise interface: ``compare(prompts, a, b)`` -> per prompt 1.0 (a better), 0.5 (tie), 0.0 (b better)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from statistics import fmean


class PairwiseJudge(ABC):
    name: str = "judge"

    @abstractmethod
    def compare(self, prompts: list[str], responses_a: list[str], responses_b: list[str]) -> list[float]: ...

    def statistics(self) -> dict[str, float]:
        """What the judge counted (API calls, cache hits, invalid answers); logged by eval."""
        return {}


def verdicts_to_win_rate(verdicts: list[float]) -> float:
    return fmean(verdicts) if verdicts else 0.5


def verdict_from_scores(score_a: float, score_b: float) -> float:
    return 1.0 if score_a > score_b else 0.5 if score_a == score_b else 0.0

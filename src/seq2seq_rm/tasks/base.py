"""Data types shared by every task, and the checks that guard task knobs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Prompt:
    text: str
    kind: str  # safety: benign | alarming | harmful; summarization: document


@dataclass(frozen=True)
class Demonstration:
    prompt: Prompt
    response: str


@dataclass(frozen=True)
class PreferencePair:
    prompt: Prompt
    chosen: str
    rejected: str


@dataclass
class Judgement:
    """What the gold judge says of one response.

    ``token_labels`` has one entry per whitespace token of the response: 1 where the judge can
    tell the token is wrong (it would be changed in the best response), 0 elsewhere.
    """

    utility: float
    kind: str
    labels: dict[str, Any] = field(default_factory=dict)
    token_labels: list[int] = field(default_factory=list)


@dataclass
class TaskData:
    sft_train: list[Demonstration]
    sft_val: list[Demonstration]
    pairs_train: list[PreferencePair]
    pairs_val: list[PreferencePair]
    rl_prompts: list[Prompt]
    test_prompts: list[Prompt]


class Task(Protocol):
    name: str
    prompt_kinds: tuple[str, ...]
    response_kinds: tuple[str, ...]

    def generate(self) -> TaskData: ...

    def judge(self, prompt: str, response: str) -> Judgement: ...

    def vocabulary(self) -> list[str]: ...


def check_probability(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"task.{name} must be a probability in [0, 1], got {value!r}")


def check_positive(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"task.{name} must be a positive integer, got {value!r}")


def check_distribution(name: str, weights: dict[str, float], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(weights) - set(allowed))
    if unknown:
        raise ValueError(f"task.{name} has unknown keys {unknown}; valid keys: {list(allowed)}")
    for key, weight in weights.items():
        if weight < 0:
            raise ValueError(f"task.{name}.{key} must be >= 0, got {weight!r}")
    if sum(weights.values()) <= 0:
        raise ValueError(f"task.{name} must have a positive total weight, got {dict(weights)!r}")


def weighted_choice(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def split_counts(total: int, val_fraction: float) -> tuple[int, int]:
    n_val = max(1, round(total * val_fraction))
    return total - n_val, n_val


def gold_disagreement(task: Task, pairs: list[PreferencePair]) -> float:
    """Share of pairs whose chosen response has a lower gold utility than the rejected one."""
    if not pairs:
        return 0.0
    worse = sum(task.judge(p.prompt.text, p.chosen).utility < task.judge(p.prompt.text, p.rejected).utility
                for p in pairs)
    return worse / len(pairs)

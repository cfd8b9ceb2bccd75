"""Data types shared by every task, and the checks that guard task knobs."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from seq2seq_rm.errors import ConfigError


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
    # real data with safety labels (PKU-SafeRLHF): whether the chosen / rejected response is safe
    safety: tuple[bool, bool] | None = None


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
    # pairs held out from every RM, to train a judge RM (real data only)
    pairs_judge: list[PreferencePair] = field(default_factory=list)
    # what loading the data counted (real data: rows read, bad rows by reason)
    stats: dict[str, float] = field(default_factory=dict)


class Task(Protocol):
    name: str
    prompt_kinds: tuple[str, ...]
    response_kinds: tuple[str, ...]
    has_gold_judge: bool  # embedded tasks: True; real data: False (use judge=rm or judge=api)

    def generate(self) -> TaskData: ...

    def judge(self, prompt: str, response: str) -> Judgement: ...

    def vocabulary(self) -> list[str]: ...


class EmbeddedTask:
    """What every embedded task shares: seeded, deterministic generation of all its splits.

    A subclass samples one prompt, one demonstration and one preference pair from a ``random.Random``;
    every item has its own RNG stream, so changing one size does not reshuffle the other splits.
    """

    has_gold_judge = True
    seed: int
    n_sft: int
    n_pairs: int
    n_rl_prompts: int
    n_test_prompts: int
    val_fraction: float

    # Out-of-distribution prompt sets: prompts whose structure differs from the training prompts (never
    # their vocabulary), judged by the same gold judge; name -> what the set changes (README, compare).
    ood_sets: dict[str, str] = {}

    def _sample_prompt(self, rng: random.Random) -> Prompt:
        raise NotImplementedError

    def _sample_ood_prompt(self, rng: random.Random, name: str) -> Prompt:
        raise NotImplementedError

    def prompt_set(self, name: str, n: int) -> list[Prompt]:
        """``n`` prompts of the set ``name`` (seeded: the same for every arm and run): ``val`` (like the
        training prompts, for tuning; never a test prompt) or one of the out-of-distribution sets."""
        if name == "val":
            return self.validation_prompts(n)
        if name not in self.ood_sets:
            raise ConfigError(f"eval.prompt_sets: task {self.name} has no prompt set {name!r}; valid: "
                              f"{['test', 'val', *self.ood_sets]}")
        rng = random.Random(f"{self.seed}-ood-{name}")
        return [self._sample_ood_prompt(rng, name) for _ in range(n)]

    def _test_prompts(self) -> list[Prompt]:
        rng = random.Random(f"{self.seed}-test")
        return [self._sample_prompt(rng) for _ in range(self.n_test_prompts)]

    def validation_prompts(self, n: int) -> list[Prompt]:
        """Prompts from the training distribution whose text is not a test prompt's, for choosing
        hyperparameters without looking at the test set. (They may repeat an RL prompt where the prompt
        space is small: safety has 416 distinct prompts and 1,024 RL prompts are drawn from them.)"""
        test = {p.text for p in self._test_prompts()}
        rng, prompts = random.Random(f"{self.seed}-val-prompts"), []
        for _ in range(1000 * n):
            if len(prompts) == n:
                return prompts
            prompt = self._sample_prompt(rng)
            if prompt.text not in test:
                prompts.append(prompt)
        raise ConfigError(f"task {self.name}: fewer than {n} prompts outside the test set; lower eval.n_ood_prompts")

    def _demonstration(self, rng: random.Random) -> Demonstration:
        raise NotImplementedError

    def _pair(self, rng: random.Random) -> PreferencePair:
        raise NotImplementedError

    def generate(self) -> TaskData:
        demos = [self._demonstration(random.Random(f"{self.seed}-sft-{i}")) for i in range(self.n_sft)]
        pairs = [self._pair(random.Random(f"{self.seed}-pair-{i}")) for i in range(self.n_pairs)]
        n_sft_train, _ = split_counts(self.n_sft, self.val_fraction)
        n_pair_train, _ = split_counts(self.n_pairs, self.val_fraction)
        rl_rng = random.Random(f"{self.seed}-rl")
        return TaskData(
            sft_train=demos[:n_sft_train],
            sft_val=demos[n_sft_train:],
            pairs_train=pairs[:n_pair_train],
            pairs_val=pairs[n_pair_train:],
            rl_prompts=[self._sample_prompt(rl_rng) for _ in range(self.n_rl_prompts)],
            test_prompts=self._test_prompts(),
        )


def check_probability(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"task.{name} must be a probability in [0, 1], got {value!r}")


def check_positive(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ConfigError(f"task.{name} must be a positive integer, got {value!r}")


def check_distribution(name: str, weights: dict[str, float], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(weights) - set(allowed))
    if unknown:
        raise ConfigError(f"task.{name} has unknown keys {unknown}; valid keys: {list(allowed)}")
    for key, weight in weights.items():
        if weight < 0:
            raise ConfigError(f"task.{name}.{key} must be >= 0, got {weight!r}")
    if sum(weights.values()) <= 0:
        raise ConfigError(f"task.{name} must have a positive total weight, got {dict(weights)!r}")


def weighted_choice(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


ANNOTATORS = ("tie_break", "utility_bt")


def check_annotator(annotator: str, label_temperature: float, length_bias: float) -> None:
    if annotator not in ANNOTATORS:
        raise ConfigError(f"task.annotator must be one of {list(ANNOTATORS)}, got {annotator!r}")
    if not float(label_temperature) > 0:
        raise ConfigError(f"task.label_temperature must be > 0, got {label_temperature!r}")
    if not math.isfinite(float(length_bias)):
        raise ConfigError(f"task.length_bias must be a finite number (logit per word), got {length_bias!r}")


def bt_prefers_first(rng: random.Random, utility_a: float, utility_b: float, length_a: int, length_b: int,
                     temperature: float, length_bias: float) -> bool:
    """A Bradley-Terry annotator: prefers ``a`` with probability
    ``sigmoid((utility_a - utility_b) / temperature + length_bias * (length_a - length_b))``.

    Labels follow the gold utility (what people mostly judge) with noise that shrinks as the gap
    grows, plus a lean toward longer answers of controlled strength (``length_bias``, logit per word).
    """
    logit = (utility_a - utility_b) / temperature + length_bias * (length_a - length_b)
    return rng.random() < 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))


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

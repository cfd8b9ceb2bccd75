"""What every real-data task shares: splits, word budget, bad-pair policy, vocabulary, no gold judge.

An adapter (``hh.py``, ``pku.py``, ``tldr.py``) turns its rows into preference pairs (and, if the
dataset has them, SFT demonstrations). This base splits the pairs by prompt, so that no prompt is in
two splits: ``train`` (SFT demonstrations = chosen responses, RM pairs, RL prompts), ``val``,
``judge`` (held out from both RMs, to train a judge RM with ``judge=rm``) and ``test`` (prompts the
eval stage generates for).

Bad pairs (``on_bad_pair``): a row the adapter cannot turn into a pair (HH: the two dialogues
differ before the last assistant turn, or have no assistant turn), identical responses, or a pair
over the word budget (``max_prompt_words``, ``max_response_words``): ``skip`` counts them in
``task/bad/<reason>``, ``error`` stops with the row's location. Malformed rows (missing field,
wrong type, broken JSON, empty text, label out of range) always stop with file, line and field.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seq2seq_rm.errors import ConfigError
from seq2seq_rm.tasks.base import Demonstration, Judgement, PreferencePair, Prompt, TaskData, check_probability
from seq2seq_rm.tasks.records import DataError

BAD_PAIR_POLICIES = ("skip", "error")


@dataclass(frozen=True)
class BadPair:
    """A well-formed row that yields no usable preference pair; ``reason`` names why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class Split:
    train: list[PreferencePair]
    val: list[PreferencePair]
    judge: list[PreferencePair]
    test_prompts: list[Prompt]


class RealTask:
    """Base of the real-data adapters; subclasses implement ``pairs()`` (and optionally ``demonstrations()``)."""

    name = "real"
    prompt_kinds: tuple[str, ...] = ("prompt",)
    response_kinds: tuple[str, ...] = ()
    has_gold_judge = False
    hub_name = ""

    def __init__(self, path: str | None = None, split: str = "train", seed: int = 0, max_pairs: int | None = None,
                 val_fraction: float = 0.1, judge_fraction: float = 0.2, test_fraction: float = 0.1,
                 n_rl_prompts: int = 1024, n_test_prompts: int = 256, max_prompt_words: int = 256,
                 max_response_words: int = 128, vocab_size: int = 8000, on_bad_pair: str = "skip") -> None:
        for key, value in dict(val_fraction=val_fraction, judge_fraction=judge_fraction,
                               test_fraction=test_fraction).items():
            check_probability(key, value)
        if val_fraction + judge_fraction + test_fraction >= 1:
            raise ConfigError("task.val_fraction + judge_fraction + test_fraction must leave pairs to train on, got "
                             f"{val_fraction} + {judge_fraction} + {test_fraction}")
        if on_bad_pair not in BAD_PAIR_POLICIES:
            raise ConfigError(f"task.on_bad_pair must be one of {list(BAD_PAIR_POLICIES)}, got {on_bad_pair!r}")
        if path and not Path(path).expanduser().exists():  # found before any work, not when the data is read
            raise DataError(f"task.path {path} is neither a file nor a folder")
        self.path, self.split, self.seed, self.max_pairs = path, split, seed, max_pairs
        self.val_fraction, self.judge_fraction, self.test_fraction = val_fraction, judge_fraction, test_fraction
        self.n_rl_prompts, self.n_test_prompts = n_rl_prompts, n_test_prompts
        self.max_prompt_words, self.max_response_words = max_prompt_words, max_response_words
        self.vocab_size, self.on_bad_pair = vocab_size, on_bad_pair
        self._data: TaskData | None = None

    # ------------------------------------------------------------------ adapters
    def pairs(self) -> Iterator[tuple[str, PreferencePair | BadPair]]:
        """Yield ``(row location, pair)`` per row, with a ``BadPair`` for a row that yields none (yielded,
        not raised: raising would end the generator)."""
        raise NotImplementedError

    def demonstrations(self) -> list[Demonstration] | None:
        """SFT demonstrations of their own (TL;DR); ``None``: SFT on the chosen responses of the train pairs."""
        return None

    # ------------------------------------------------------------------ shared
    def _collect(self) -> tuple[list[PreferencePair], Counter]:
        kept, counts = [], Counter()
        for where, pair in self.pairs():
            if self.max_pairs is not None and len(kept) >= self.max_pairs:
                break
            counts["rows"] += 1
            if isinstance(pair, BadPair):
                self._bad(counts, pair)
                continue
            reason = self._budget_reason(pair)
            if reason:
                self._bad(counts, BadPair(where, reason))
                continue
            kept.append(pair)
        counts["pairs"] = len(kept)
        return kept, counts

    def _bad(self, counts: Counter, bad: BadPair) -> None:
        if self.on_bad_pair == "error":
            raise DataError(f"{bad} (set task.on_bad_pair=skip to drop and count such rows)")
        counts["bad"] += 1
        counts[f"bad/{bad.reason}"] += 1

    def _budget_reason(self, pair: PreferencePair) -> str | None:
        if pair.chosen.strip() == pair.rejected.strip():
            return "identical"
        if len(pair.prompt.text.split()) > self.max_prompt_words:
            return "prompt_too_long"
        if max(len(pair.chosen.split()), len(pair.rejected.split())) > self.max_response_words:
            return "response_too_long"
        return None

    def _split(self, pairs: list[PreferencePair]) -> Split:
        prompts = sorted({p.prompt.text for p in pairs})
        random.Random(f"{self.seed}-split").shuffle(prompts)
        n = len(prompts)
        n_val, n_judge, n_test = (round(n * f) for f in (self.val_fraction, self.judge_fraction, self.test_fraction))
        bounds = {"val": n_val, "judge": n_val + n_judge, "test": n_val + n_judge + n_test}
        split_of = {}
        for i, text in enumerate(prompts):
            split_of[text] = next((name for name, end in bounds.items() if i < end), "train")
        by_split: dict[str, list[PreferencePair]] = {"train": [], "val": [], "judge": [], "test": []}
        for pair in pairs:
            by_split[split_of[pair.prompt.text]].append(pair)
        test_prompts = list({p.prompt.text: p.prompt for p in by_split["test"]}.values())[: self.n_test_prompts]
        return Split(by_split["train"], by_split["val"], by_split["judge"], test_prompts)

    def generate(self) -> TaskData:
        if self._data is not None:
            return self._data
        pairs, counts = self._collect()
        if not pairs:
            raise DataError(f"task {self.name}: no usable preference pairs in {self.path or self.hub_name} "
                             f"({dict(counts)})")
        split = self._split(pairs)
        empty = [name for name, part in (("train", split.train), ("val", split.val), ("test", split.test_prompts))
                 if not part]
        if empty:
            raise DataError(f"task {self.name}: {len(pairs)} usable pairs leave the {'/'.join(empty)} split(s) "
                             "empty; use more data or larger task.val_fraction / test_fraction")
        demos = self.demonstrations()
        if demos is None:
            sft_train = [Demonstration(p.prompt, p.chosen) for p in split.train]
            sft_val = [Demonstration(p.prompt, p.chosen) for p in split.val]
        else:
            n_val = max(1, round(len(demos) * self.val_fraction))
            sft_train, sft_val = demos[n_val:], demos[:n_val]
        rl_prompts = list({p.prompt.text: p.prompt for p in split.train}.values())[: self.n_rl_prompts]
        stats = {f"task/{k}": float(v) for k, v in sorted(counts.items())}
        stats.update({f"task/split/{k}": float(len(v)) for k, v in
                      (("train", split.train), ("val", split.val), ("judge", split.judge),
                       ("test_prompts", split.test_prompts), ("sft_train", sft_train))})
        self._data = TaskData(sft_train=sft_train, sft_val=sft_val, pairs_train=split.train, pairs_val=split.val,
                              rl_prompts=rl_prompts, test_prompts=split.test_prompts, pairs_judge=split.judge,
                              stats=stats)
        return self._data

    def prompt_set(self, name: str, n: int) -> list[Prompt]:
        """``val``: the prompts of the validation pairs (the split is by prompt, so never an RL or test prompt)."""
        if name != "val":
            raise ConfigError(f"eval.prompt_sets: task {self.name} has the prompt sets ['test', 'val'], not {name!r}")
        return list({p.prompt.text: p.prompt for p in self.generate().pairs_val}.values())[:n]

    def judge(self, prompt: str, response: str) -> Judgement:
        raise NotImplementedError(f"task {self.name} has no gold judge: evaluate with judge=rm or judge=api")

    def vocabulary(self) -> list[str]:
        """The ``vocab_size`` most frequent whitespace words of the training text (for model=tiny)."""
        data = self.generate()
        counts = Counter()
        for demo in data.sft_train:
            counts.update(demo.prompt.text.split())
            counts.update(demo.response.split())
        for pair in data.pairs_train:
            counts.update(pair.rejected.split())
        return [word for word, _ in counts.most_common(self.vocab_size)]

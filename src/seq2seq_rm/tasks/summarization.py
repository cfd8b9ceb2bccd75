"""Embedded summarization task: summarise the key facts of a document, nothing else.

A document is ``doc about T :`` followed by facts ``E V O .``; the key facts are those whose
subject is T. The gold judge rewards key-fact coverage and penalises repetition, invention and
padding. Two annotators label the preference pairs:
- ``utility_bt`` (people-like): a Bradley-Terry choice on the gold utility gap with a temperature,
  plus a lean toward the longer summary of ``length_bias`` logits per word;
- ``tie_break`` (the earlier rule): the summary that covers more key facts wins; between two that
  cover as many, the longer one with probability ``p_long``. It says nothing about invention,
  repetition or padding except through length.
Either way "more key facts" already means "longer", so length is an easy cue for a reward model
(the paper's long-response bias).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from seq2seq_rm.errors import ConfigError
from seq2seq_rm.tasks.base import (
    Demonstration,
    EmbeddedTask,
    Judgement,
    PreferencePair,
    Prompt,
    bt_prefers_first,
    check_annotator,
    check_distribution,
    check_positive,
    check_probability,
    gold_disagreement,
    weighted_choice,
)

ENTITIES = ("cat", "dog", "fox", "owl", "bee", "cow", "pig", "hen", "ant", "bat", "elk", "yak", "ram", "eel")
VERBS = ("eats", "sees", "likes", "chases", "finds", "hides", "fears", "guards", "smells", "wants")
OBJECTS = ("fish", "milk", "seeds", "grass", "bread", "apples", "nuts", "corn", "rice", "honey", "worms",
           "berries", "leaves", "roots", "eggs", "cheese")
PROMPT_KINDS = ("document",)
SUMMARY_KINDS = ("gold", "partial", "padded", "repetitive", "invented")
RESPONSE_KINDS = (*SUMMARY_KINDS, "empty")
DEFAULT_SFT_MIX = {"gold": 0.5, "partial": 0.15, "padded": 0.15, "repetitive": 0.15, "invented": 0.05}
# "lead": key facts open the document (a lead paragraph), filler follows; "anywhere": interleaved.
# A 2-layer model does not learn to pick interleaved key facts in minutes of CPU (token accuracy on
# the copied words stayed near 0.3 after 8,000 SFT steps), so "lead" is the default for model=tiny.
KEY_POSITIONS = ("lead", "anywhere")
# gold utility: coverage in [-1, 1] minus these penalties per offending fact
REPEAT_PENALTY, INVENT_PENALTY, PAD_PENALTY = 0.5, 0.5, 0.25

Fact = tuple[str, ...]


def fact_text(facts: list[Fact]) -> str:
    return " ".join(" ".join(f) + " ." for f in facts)


def split_facts(text: str) -> list[Fact]:
    """Split on '.' into facts; a trailing fragment without '.' is a fact too (malformed)."""
    facts, current = [], []
    for token in text.split():
        if token == ".":
            facts.append(tuple(current))
            current = []
        else:
            current.append(token)
    if current:
        facts.append(tuple(current))
    return facts


class SummarizationTask(EmbeddedTask):
    """Generator and gold judge of the embedded summarization task (knobs in conf/task/summarization.yaml)."""

    name = "summarization"
    # knobs that shape only the preference pairs: the SFT policy does not depend on them (its cache key skips them)
    preference_fields = ("n_pairs", "p_long", "noise", "annotator", "label_temperature", "length_bias")
    prompt_kinds = PROMPT_KINDS
    response_kinds = RESPONSE_KINDS
    ood_sets = {
        "interleaved": "key facts anywhere in the document instead of leading it",
        "long": "10-12 facts of which 4-5 are key (training: 6-8 facts, 2-3 key)",
        "single_key": "4-5 facts of which exactly one is key",
    }

    def __init__(
        self,
        seed: int = 0,
        n_sft: int = 3000,
        n_pairs: int = 4000,
        n_rl_prompts: int = 1024,
        n_test_prompts: int = 256,
        val_fraction: float = 0.1,
        min_facts: int = 6,
        max_facts: int = 8,
        min_key: int = 2,
        max_key: int = 3,
        p_long: float = 0.8,
        noise: float = 0.0,
        key_position: str = "lead",
        sft_mix: Mapping[str, float] | None = None,
        annotator: str = "tie_break",
        label_temperature: float = 0.25,
        length_bias: float = 0.0,
    ) -> None:
        for key, value in dict(n_sft=n_sft, n_pairs=n_pairs, n_rl_prompts=n_rl_prompts,
                               n_test_prompts=n_test_prompts, min_facts=min_facts, max_facts=max_facts,
                               min_key=min_key, max_key=max_key).items():
            check_positive(key, value)
        for key, value in dict(val_fraction=val_fraction, p_long=p_long, noise=noise).items():
            check_probability(key, value)
        if not (min_key <= max_key < min_facts <= max_facts):
            raise ConfigError("task needs min_key <= max_key < min_facts <= max_facts, got "
                             f"min_key={min_key}, max_key={max_key}, min_facts={min_facts}, max_facts={max_facts}")
        if key_position not in KEY_POSITIONS:
            raise ConfigError(f"task.key_position must be one of {list(KEY_POSITIONS)}, got {key_position!r}")
        check_annotator(annotator, label_temperature, length_bias)
        self.annotator, self.label_temperature, self.length_bias = annotator, label_temperature, length_bias
        self.key_position = key_position
        self.sft_mix = dict(sft_mix or DEFAULT_SFT_MIX)
        check_distribution("sft_mix", self.sft_mix, SUMMARY_KINDS)
        self.seed, self.n_sft, self.n_pairs = seed, n_sft, n_pairs
        self.n_rl_prompts, self.n_test_prompts, self.val_fraction = n_rl_prompts, n_test_prompts, val_fraction
        self.min_facts, self.max_facts, self.min_key, self.max_key = min_facts, max_facts, min_key, max_key
        self.p_long, self.noise = p_long, noise

    # ----------------------------------------------------------------- generation
    def _sample_prompt(self, rng: random.Random) -> Prompt:
        return self._document(rng, (self.min_facts, self.max_facts), (self.min_key, self.max_key),
                              interleave=self.key_position == "anywhere")

    def _sample_ood_prompt(self, rng: random.Random, name: str) -> Prompt:
        interleave = self.key_position == "anywhere"
        if name == "interleaved":
            return self._document(rng, (self.min_facts, self.max_facts), (self.min_key, self.max_key), True)
        if name == "long":
            return self._document(rng, (10, 12), (4, 5), interleave)
        return self._document(rng, (4, 5), (1, 1), interleave)  # single_key

    def _document(self, rng: random.Random, n_facts_range: tuple[int, int], n_key_range: tuple[int, int],
                  interleave: bool) -> Prompt:
        # the draws keep their order (topic, sizes, subjects): cached artifacts were trained on this stream
        topic = rng.choice(ENTITIES)
        n_facts = rng.randint(*n_facts_range)
        n_key = rng.randint(*n_key_range)
        others = [e for e in ENTITIES if e != topic]
        subjects = [topic] * n_key + [rng.choice(others) for _ in range(n_facts - n_key)]
        if interleave:
            rng.shuffle(subjects)
        facts, seen = [], set()
        for subject in subjects:
            fact = (subject, rng.choice(VERBS), rng.choice(OBJECTS))
            while fact in seen:
                fact = (subject, rng.choice(VERBS), rng.choice(OBJECTS))
            seen.add(fact)
            facts.append(fact)
        return Prompt(text=f"doc about {topic} : {fact_text(facts)}", kind="document")

    def _summary(self, rng: random.Random, prompt: Prompt, kind: str) -> str:
        topic, facts = self.parse_document(prompt.text)
        key = [f for f in facts if f[0] == topic]
        filler = [f for f in facts if f[0] != topic]
        out = list(key)
        if kind == "partial":
            out = sorted(rng.sample(key, rng.randint(1, len(key) - 1)), key=key.index)
        elif kind == "padded":
            for fact in rng.sample(filler, rng.randint(1, 2)):
                out.insert(rng.randint(0, len(out)), fact)
        elif kind == "repetitive":
            for fact in rng.choices(key, k=rng.randint(1, 2)):
                out.insert(out.index(fact) + 1, fact)
        elif kind == "invented":
            doc_facts = set(facts)
            invented = (topic, rng.choice(VERBS), rng.choice(OBJECTS))
            while invented in doc_facts:
                invented = (topic, rng.choice(VERBS), rng.choice(OBJECTS))
            out.insert(rng.randint(0, len(out)), invented)
        return fact_text(out)

    def _demonstration(self, rng: random.Random) -> Demonstration:
        prompt = self._sample_prompt(rng)
        return Demonstration(prompt, self._summary(rng, prompt, weighted_choice(rng, self.sft_mix)))

    def _pair(self, rng: random.Random) -> PreferencePair:
        prompt = self._sample_prompt(rng)
        kind_a, kind_b = rng.sample(SUMMARY_KINDS, 2)
        a, b = self._summary(rng, prompt, kind_a), self._summary(rng, prompt, kind_b)
        judged_a, judged_b = self.judge(prompt.text, a), self.judge(prompt.text, b)
        covered_a, covered_b = judged_a.labels["key_covered"], judged_b.labels["key_covered"]
        if self.annotator == "utility_bt":
            a_wins = bt_prefers_first(rng, judged_a.utility, judged_b.utility, len(a.split()), len(b.split()),
                                      self.label_temperature, self.length_bias)
        elif covered_a != covered_b:
            a_wins = covered_a > covered_b
        elif len(a.split()) != len(b.split()):
            longer_is_a = len(a.split()) > len(b.split())
            a_wins = longer_is_a if rng.random() < self.p_long else not longer_is_a
        else:
            a_wins = judged_a.utility >= judged_b.utility
        chosen, rejected = (a, b) if a_wins else (b, a)
        if rng.random() < self.noise:
            chosen, rejected = rejected, chosen
        return PreferencePair(prompt, chosen, rejected)

    # ------------------------------------------------------------------ gold judge
    @staticmethod
    def parse_document(prompt: str) -> tuple[str, list[Fact]]:
        head, sep, body = prompt.partition(" : ")
        words = head.split()
        if not sep or len(words) < 3 or words[-3:-1] != ["doc", "about"]:
            raise ValueError(f"summarization judge: prompt is not 'doc about T : facts': {prompt!r}")
        return words[-1], split_facts(body)

    def judge(self, prompt: str, response: str) -> Judgement:
        topic, facts = self.parse_document(prompt)
        doc_facts, key_facts = set(facts), {f for f in facts if f[0] == topic}
        covered, repeated, invented, padding = set(), 0, 0, 0
        token_labels: list[int] = []
        padding_tokens = 0
        for fact in split_facts(response):
            bad = True
            if fact in key_facts and fact not in covered:
                covered.add(fact)
                bad = False
            elif fact in key_facts:
                repeated += 1
            elif fact in doc_facts:
                padding += 1
                padding_tokens += len(fact) + 1
            else:
                invented += 1
            token_labels += [int(bad)] * (len(fact) + 1)
        token_labels = token_labels[: len(response.split())]  # a trailing fragment has no '.'
        coverage = len(covered) / len(key_facts)
        utility = 2 * coverage - 1 - REPEAT_PENALTY * repeated - INVENT_PENALTY * invented - PAD_PENALTY * padding
        if not response.split():
            kind = "empty"
        elif invented:
            kind = "invented"
        elif repeated:
            kind = "repetitive"
        elif padding:
            kind = "padded"
        elif coverage < 1:
            kind = "partial"
        else:
            kind = "gold"
        labels = {
            "n_key": len(key_facts), "key_covered": len(covered), "coverage": coverage,
            "repeated": repeated, "invented": invented, "padding_facts": padding,
            "padding_tokens": padding_tokens, "length": len(response.split()),
            "gold_length": 4 * len(key_facts),
        }
        return Judgement(utility=utility, kind=kind, labels=labels, token_labels=token_labels)

    def probe_responses(self, prompt: str) -> dict[str, str]:
        """The gold summary and three worse ones an RM with a length bias ranks above it."""
        topic, facts = self.parse_document(prompt)
        key = [f for f in facts if f[0] == topic]
        filler = [f for f in facts if f[0] != topic]
        return {
            "gold": fact_text(key),
            "padded": fact_text(key + filler[:1]),
            "repetitive": fact_text(key + key[-1:]),
            "partial": fact_text(key[:-1]),
        }

    def preference_stats(self, pairs: list[PreferencePair]) -> dict[str, float]:
        """The statistics each bias knob moves, measured through the gold judge."""
        ties, longer_wins, chosen_longer = 0, 0, 0
        flawed_pairs, flawed_chosen = 0, 0
        for p in pairs:
            chosen, rejected = self.judge(p.prompt.text, p.chosen), self.judge(p.prompt.text, p.rejected)
            longer = chosen.labels["length"] > rejected.labels["length"]
            chosen_longer += longer
            flaws = [j.labels["invented"] + j.labels["repeated"] + j.labels["padding_facts"] > 0
                     for j in (chosen, rejected)]
            if (chosen.labels["key_covered"] == rejected.labels["key_covered"]) and flaws[0] != flaws[1]:
                flawed_pairs += 1  # as complete as each other, one of them invents, repeats or pads
                flawed_chosen += flaws[0]
            if (chosen.labels["key_covered"] == rejected.labels["key_covered"]
                    and chosen.labels["length"] != rejected.labels["length"]):
                ties += 1
                longer_wins += longer
        return {
            "longer_chosen_rate_on_ties": longer_wins / max(1, ties),
            "chosen_longer_share": chosen_longer / max(1, len(pairs)),
            "flawed_chosen_rate_on_ties": flawed_chosen / max(1, flawed_pairs),
            "gold_disagreement": gold_disagreement(self, pairs),
        }

    def vocabulary(self) -> list[str]:
        return sorted({"doc", "about", ":", ".", *ENTITIES, *VERBS, *OBJECTS})

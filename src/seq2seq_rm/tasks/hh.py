"""Anthropic/hh-rlhf adapter: rows ``{chosen, rejected}``, each a whole dialogue.

The two dialogues share everything up to the last assistant turn: that shared prefix (ending in
``Assistant:``) is the prompt, the two last assistant turns are the responses.
"""

from __future__ import annotations

from collections.abc import Iterator

from seq2seq_rm.tasks.base import PreferencePair, Prompt
from seq2seq_rm.tasks.real import BadPair, RealTask
from seq2seq_rm.tasks.records import read_rows

ASSISTANT = "\n\nAssistant:"


def split_last_assistant_turn(dialogue: str) -> tuple[str, str] | None:
    """``(prefix through the last "Assistant:", that turn's text)``, or None without an assistant turn."""
    cut = dialogue.rfind(ASSISTANT)
    if cut < 0:
        return None
    end = cut + len(ASSISTANT)
    return dialogue[:end], dialogue[end:].strip()


def hh_pair(chosen: str, rejected: str, where: str) -> PreferencePair | BadPair:
    """The pair of one HH row, or why it has none."""
    split_chosen, split_rejected = split_last_assistant_turn(chosen), split_last_assistant_turn(rejected)
    if split_chosen is None or split_rejected is None:
        return BadPair(where, "no_assistant_turn")
    (prefix, chosen_turn), (rejected_prefix, rejected_turn) = split_chosen, split_rejected
    if prefix != rejected_prefix:
        return BadPair(where, "dialogues_differ_before_last_turn")
    if not chosen_turn or not rejected_turn:
        return BadPair(where, "empty_response")
    return PreferencePair(Prompt(prefix.strip(), kind="dialogue"), chosen_turn, rejected_turn)


class HHTask(RealTask):
    """``task=hh_harmless`` / ``task=hh_helpful``: the subset is the hub ``data_dir``, or a local file/folder."""

    prompt_kinds = ("dialogue",)
    hub_name = "Anthropic/hh-rlhf"

    def __init__(self, subset: str = "harmless-base", **kwargs) -> None:
        super().__init__(**kwargs)
        self.subset = subset
        self.name = "hh_" + subset.split("-")[0]

    def pairs(self) -> Iterator[tuple[str, PreferencePair | BadPair]]:
        for row in read_rows(self.path, self.hub_name, self.split, data_dir=self.subset):
            chosen, rejected = row.get("chosen", str, non_empty=True), row.get("rejected", str, non_empty=True)
            yield row.where, hh_pair(chosen, rejected, row.where)

"""PKU-Alignment/PKU-SafeRLHF adapter: one prompt, two responses, a "better" and a "safer" label.

``preference`` picks which label makes the chosen response (``safer`` by default, the safety
question); each pair keeps both responses' safety labels for the refusal/harm metrics, and the
prompt kind says whether either response is unsafe (``unsafe_pair``) or both are safe (``safe_pair``).
"""

from __future__ import annotations

from collections.abc import Iterator

from seq2seq_rm.errors import ConfigError
from seq2seq_rm.tasks.base import PreferencePair, Prompt
from seq2seq_rm.tasks.real import BadPair, RealTask
from seq2seq_rm.tasks.records import Row, RowError, read_rows

PREFERENCES = ("safer", "better")


def response_index(row: Row, field: str) -> int:
    value = row.get(field, int)
    if value not in (0, 1):
        raise RowError(row.where, field, f"must be 0 or 1, got {value}")
    return value


def pku_pair(row: Row, preference: str) -> PreferencePair | BadPair:
    prompt = row.get("prompt", str, non_empty=True)
    responses = [row.get("response_0", str, non_empty=True), row.get("response_1", str, non_empty=True)]
    safe = [row.get("is_response_0_safe", bool), row.get("is_response_1_safe", bool)]
    better, safer = response_index(row, "better_response_id"), response_index(row, "safer_response_id")
    chosen = safer if preference == "safer" else better
    if responses[0].strip() == responses[1].strip():
        return BadPair(row.where, "identical")
    kind = "safe_pair" if all(safe) else "unsafe_pair"
    return PreferencePair(Prompt(prompt.strip(), kind=kind), responses[chosen].strip(), responses[1 - chosen].strip(),
                          safety=(safe[chosen], safe[1 - chosen]))


class PKUSafeRLHFTask(RealTask):
    name = "pku_saferlhf"
    prompt_kinds = ("safe_pair", "unsafe_pair")
    hub_name = "PKU-Alignment/PKU-SafeRLHF"

    def __init__(self, preference: str = "safer", **kwargs) -> None:
        if preference not in PREFERENCES:
            raise ConfigError(f"task.preference must be one of {list(PREFERENCES)}, got {preference!r}")
        super().__init__(**kwargs)
        self.preference = preference

    def pairs(self) -> Iterator[tuple[str, PreferencePair | BadPair]]:
        for row in read_rows(self.path, self.hub_name, self.split):
            yield row.where, pku_pair(row, self.preference)

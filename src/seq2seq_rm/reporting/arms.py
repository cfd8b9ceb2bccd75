"""How reports order arms: the seq2seq arms first, then the scalar ones (plain first), then gold."""

from __future__ import annotations


def arm_order(arm: str) -> tuple:
    family = 0 if arm.startswith("seq2seq") else 1 if arm.startswith("scalar") else 2
    return family, arm != "scalar", arm

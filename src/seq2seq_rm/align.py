"""Token alignment shared by the gold judges and the seq2seq reward extraction."""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def kept_token_mask(tokens: Sequence, reference: Sequence) -> list[bool]:
    """True for each token of ``tokens`` that a minimal edit into ``reference`` leaves unchanged."""
    kept = [False] * len(tokens)
    for tag, i1, i2, _, _ in Levenshtein.opcodes(list(tokens), list(reference)):
        if tag == "equal":
            kept[i1:i2] = [True] * (i2 - i1)
    return kept


def similarity(tokens: Sequence, reference: Sequence) -> float:
    """1 - normalised Levenshtein distance over tokens (1.0 for identical, 1.0 for two empties)."""
    return Levenshtein.normalized_similarity(list(tokens), list(reference))

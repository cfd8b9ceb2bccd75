"""Pairwise judges for eval and compare: gold (embedded tasks), rm (a held-out scalar RM), api (an LLM)."""

from seq2seq_rm.judges.base import PairwiseJudge, verdicts_to_win_rate
from seq2seq_rm.judges.gold import GoldJudge


def judge_from_spec(spec: dict) -> PairwiseJudge:
    """Rebuild a run's eval judge from the ``judge`` entry of its results.json (``rm`` or ``api``)."""
    options = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "rm":
        from seq2seq_rm.judges.rm import RewardModelJudge

        return RewardModelJudge.from_directory(options["path"])
    if spec["type"] == "api":
        from seq2seq_rm.judges.api import APIJudge

        return APIJudge(**options)
    raise ValueError(f"cannot rebuild a judge of type {spec['type']!r}")


__all__ = ["GoldJudge", "PairwiseJudge", "judge_from_spec", "verdicts_to_win_rate"]

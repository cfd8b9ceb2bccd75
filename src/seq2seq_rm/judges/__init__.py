"""Pairwise judges for eval and compare: gold (embedded tasks), rm (a held-out scalar RM), api (an LLM)."""

from seq2seq_rm.judges.base import PairwiseJudge, verdicts_to_win_rate
from seq2seq_rm.judges.gold import GoldJudge

__all__ = ["GoldJudge", "PairwiseJudge", "verdicts_to_win_rate"]

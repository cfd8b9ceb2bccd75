"""Scalar and token-level rewards behind one interface."""

from seq2seq_rm.rewards.extraction import align_token_rewards
from seq2seq_rm.rewards.interface import GoldReward, RewardFunction, ScalarReward, Seq2seqReward

__all__ = ["GoldReward", "RewardFunction", "ScalarReward", "Seq2seqReward", "align_token_rewards"]

"""Backbone factories (tokenizer-aware) for the policy and the reward models."""

from seq2seq_rm.models.backbone import gpt2_from_scratch, load_backbone, pretrained_causal_lm, save_backbone

__all__ = ["gpt2_from_scratch", "load_backbone", "pretrained_causal_lm", "save_backbone"]

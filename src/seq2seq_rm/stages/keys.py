"""What enters each stage's cache key, and the labels that name a run's arm and read-off."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from seq2seq_rm.tasks.base import Task


def sft_task_config(cfg: DictConfig, task: Task) -> dict:
    """The task config without the knobs that shape only preference pairs (``task.preference_fields``):
    a sweep over ``q`` or ``p_long`` trains one SFT policy per task and seed."""
    config = OmegaConf.to_container(cfg.task, resolve=True)
    return {k: v for k, v in config.items() if k not in getattr(task, "preference_fields", ())}


def rm_training_config(rm_cfg: DictConfig) -> dict:
    """What determines a trained RM: its config without the read-off (``rm.reward``), which belongs to
    the consumers (PPO and eval keys include it), so that one RM is trained once and read many ways.
    ``aligned_positions`` stays: the seq2seq RM is trained in that layout."""
    config = OmegaConf.to_container(rm_cfg, resolve=True)
    reward = config.pop("reward", None) or {}
    config.pop("n_probe_prompts", None)  # probes run per read-off, outside the artifact
    if "aligned_positions" in reward:
        config["aligned_positions"] = reward["aligned_positions"]
    return config


def read_off_label(rm_cfg: DictConfig) -> str:
    """How the run reads its RM, as a short label: ``gold``, ``scalar[_lp][_decorr]``,
    ``[per_token_|decode_][soft_]<aggregation>`` for the seq2seq RM."""
    reward = rm_cfg.get("reward") or {}
    if rm_cfg.type == "scalar":
        return ("scalar" + ("_lp" if reward.get("length_penalty", 0.0) else "")
                + ("_decorr" if reward.get("decorrelate_length", False) else ""))
    if rm_cfg.type == "seq2seq":
        rule = "" if reward.get("extraction", "prefix") == "prefix" else f"{reward.extraction}_"
        return f"{rule}{'soft_' if reward.get('soft', False) else ''}{reward.get('aggregation', 'sum')}"
    return str(rm_cfg.type)


def arm_label(rm_cfg: DictConfig) -> str:
    """The arm's name in results.json and compare: ``scalar``, ``scalar_lp``, ``seq2seq_mean``, ``gold``..."""
    label = read_off_label(rm_cfg)
    return f"seq2seq_{label}" if rm_cfg.type == "seq2seq" else label



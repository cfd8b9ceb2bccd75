"""Stage rm: train the configured reward model from the SFT policy, read it as configured, probe it."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.artifacts import Artifact, config_key
from seq2seq_rm.data.pairs import PairDataModule, encode_pairs
from seq2seq_rm.data.tokenizer import encode, encode_prompt, special_ids
from seq2seq_rm.errors import ConfigError, DataError
from seq2seq_rm.eval.rm_probes import probe_warnings, rm_diagnostics
from seq2seq_rm.models.backbone import context_length, load_backbone, save_backbone
from seq2seq_rm.models.heads import ScalarHeadModel, save_scalar_head, write_rm_type
from seq2seq_rm.models.lora import add_lora
from seq2seq_rm.rewards.interface import (
    GoldReward,
    RewardFunction,
    ScalarReward,
    Seq2seqReward,
    fit_length_trend,
    load_reward_model,
)
from seq2seq_rm.stages import sft
from seq2seq_rm.stages.context import Context, artifact_dir, cached, container, make_trainer, training_setup
from seq2seq_rm.stages.keys import read_off_label, rm_training_config


def seq2seq_reward(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, options: DictConfig) -> Seq2seqReward:
    return Seq2seqReward(model, special_ids(tokenizer), **OmegaConf.to_container(options, resolve=True))


def scalar_reward(ctx: Context, model: ScalarHeadModel, options: DictConfig | None) -> ScalarReward:
    """The scalar RM read as configured: plain, minus ``length_penalty`` per token, and/or minus its
    linear fit on length over the RM's own training responses (``decorrelate_length``)."""
    options = options or {}
    reward = ScalarReward(model, special_ids(ctx.tokenizer), length_penalty=float(options.get("length_penalty", 0.0)))
    if options.get("decorrelate_length", False):
        pairs = ctx.data.pairs_train[:1000]
        prompts = [encode_prompt(ctx.tokenizer, p.prompt.text) for p in pairs] * 2
        responses = [encode(ctx.tokenizer, p.chosen) for p in pairs] + [encode(ctx.tokenizer, p.rejected)
                                                                         for p in pairs]
        lengths = torch.tensor([len(r) for r in responses])
        reward.length_trend = fit_length_trend(reward.scores(prompts, responses), lengths)
    return reward


def _probe(ctx: Context, reward: RewardFunction, name: str) -> dict[str, float]:
    prompts = ctx.data.test_prompts[: ctx.cfg.rm.n_probe_prompts]
    pairs = ctx.data.pairs_val[: ctx.cfg.rm.n_probe_prompts]
    metrics = rm_diagnostics(ctx.task, reward, ctx.tokenizer, prompts, pairs)
    return {f"rm/probe/{name}/{k}": v for k, v in metrics.items()}


def fit_reward_model(ctx: Context, rm_cfg: DictConfig, train_pairs: list, val_pairs: list,
                     work_dir: Path) -> tuple[PreTrainedModel | ScalarHeadModel, RewardFunction, dict[str, float]]:
    """Train a reward model of ``rm_cfg.type`` from the SFT policy on the given pairs; return the model,
    its reward function and its validation and data metrics."""
    cfg, rm_type = ctx.cfg, rm_cfg.type
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = load_backbone(artifact_dir(cfg, "sft", ctx.keys["sft"])).train()  # from_pretrained gives eval mode
    model = add_lora(model, cfg.model.get("lora"))
    max_length = context_length(model)
    train, bad_train = encode_pairs(train_pairs, ctx.tokenizer, max_length, rm_cfg.on_bad_pair, "train")
    val, bad_val = encode_pairs(val_pairs, ctx.tokenizer, max_length, rm_cfg.on_bad_pair, "val")
    if not train or not val:
        raise DataError(f"{rm_type} RM: no usable pairs left (train {len(train)}, val {len(val)}; skipped "
                         f"{dict(bad_train)} / {dict(bad_val)}): raise the model's context or the task's word budget")
    if rm_type == "scalar":
        model = ScalarHeadModel(model)
        reward: RewardFunction = ScalarReward(model, special_ids(ctx.tokenizer))
    else:  # validation reads the RM with the paper's rule; the run's own read-off is probed after training
        reward = Seq2seqReward(model, special_ids(ctx.tokenizer),
                               aligned_positions=bool(rm_cfg.reward.get("aligned_positions", False)))
    aligned = rm_type == "seq2seq" and rm_cfg.reward.get("aligned_positions", False)
    datamodule = PairDataModule(train, val, ctx.tokenizer, "scalar" if rm_type == "scalar" else "rewrite",
                                rm_cfg.batch_size, identity_weight=rm_cfg.get("identity_weight", 0.0), seed=cfg.seed,
                                aligned_positions=aligned)
    max_steps = rm_cfg.epochs * -(-len(train) // rm_cfg.batch_size)
    module = instantiate(rm_cfg.module, model=model, reward=reward, max_steps=max_steps)
    trainer = make_trainer(cfg, "rm", max_steps=max_steps, default_root_dir=str(work_dir))
    trainer.fit(module, datamodule=datamodule)
    model.eval()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("rm/val/")}
    metrics.update({f"rm/data/skipped_{split}_{reason}": float(n)
                    for split, bad in (("train", bad_train), ("val", bad_val)) for reason, n in bad.items()})
    return model, reward, metrics


def _probe_read_offs(ctx: Context, model: PreTrainedModel | ScalarHeadModel) -> dict[str, float]:
    """Pre-RL probes of the run's read-off, and of every aggregation of its seq2seq rule (each one's
    length incentive shows before any RL is spent); cheap, so they run for every run, not per artifact."""
    rm_cfg = ctx.cfg.rm
    if rm_cfg.type == "scalar":
        return _probe(ctx, ctx.reward, read_off_label(rm_cfg))
    metrics = {}
    for aggregation in dict.fromkeys([rm_cfg.reward.aggregation, "sum", "mean", "penalty"]):
        options = OmegaConf.merge(rm_cfg.reward, {"aggregation": aggregation})
        reward = ctx.reward if aggregation == rm_cfg.reward.aggregation else seq2seq_reward(model, ctx.tokenizer,
                                                                                            options)
        metrics.update(_probe(ctx, reward, read_off_label(OmegaConf.merge(rm_cfg, {"reward": options}))))
    return metrics


def run(ctx: Context) -> dict[str, float]:
    """Train the configured reward model from the SFT policy on the task's preference pairs (once per
    training config, whatever the read-off), read it as configured, then probe that read-off."""
    cfg, rm_type = ctx.cfg, ctx.cfg.rm.type
    if rm_type not in ("scalar", "seq2seq", "gold"):
        raise ConfigError(f"rm.type must be one of ['scalar', 'seq2seq', 'gold'], got {rm_type!r}")
    if "sft" not in ctx.keys:  # the RM starts from the SFT policy and its tokenizer
        ctx.results.update(sft.run(ctx))
    if rm_type == "gold":
        if not ctx.task.has_gold_judge:
            raise ConfigError(f"rm=gold needs a gold judge, and task {ctx.task.name} has none: use rm=scalar|seq2seq")
        ctx.reward = GoldReward(ctx.task, ctx.tokenizer)
        return {}
    # the task config as a whole: the SFT key leaves out the knobs that shape the pairs, and they shape this RM
    key = config_key({"sft": ctx.keys["sft"], "pairs": container(cfg, "task")["task"],
                      "rm": rm_training_config(cfg.rm), "trainer": training_setup(cfg)})
    ctx.keys["rm"] = key
    models: list = []

    def load(directory: Path) -> None:
        models.append(load_reward_model(directory, rm_type))

    def build(work_dir: Path) -> dict[str, float]:
        model, _, metrics = fit_reward_model(ctx, cfg.rm, ctx.data.pairs_train, ctx.data.pairs_val, work_dir)
        if rm_type == "scalar":
            save_scalar_head(model, work_dir)
            ctx.tokenizer.save_pretrained(work_dir)
        else:
            save_backbone(model, ctx.tokenizer, work_dir)  # weights and tokenizer
        write_rm_type(work_dir, rm_type)
        models.append(model)
        return metrics

    metrics = dict(cached(ctx, "rm", Artifact(cfg.paths.artifacts, f"rm_{rm_type}", key), build, load))
    model = models[0]
    ctx.reward = (scalar_reward(ctx, model, cfg.rm.get("reward")) if rm_type == "scalar"
                  else seq2seq_reward(model, ctx.tokenizer, cfg.rm.reward))
    metrics.update(_probe_read_offs(ctx, model))
    scorer = read_off_label(cfg.rm)
    prefix = f"rm/probe/{scorer}/"
    for warning in probe_warnings(ctx.task.name, {k[len(prefix):]: v for k, v in metrics.items()
                                                  if k.startswith(prefix)}):
        ctx.warn("rm", f"{warning} (read-off: {scorer})")
    return metrics



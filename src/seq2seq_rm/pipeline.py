"""The staged pipeline: each stage reads the config, builds its parts with Hydra, caches its artifact."""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.artifacts import Artifact, config_key
from seq2seq_rm.data.pairs import PairDataModule, encode_pairs
from seq2seq_rm.data.sft import SFTDataModule
from seq2seq_rm.data.tokenizer import encode, special_ids
from seq2seq_rm.eval.bias import bias_metrics, win_rate
from seq2seq_rm.eval.generate import generate_responses
from seq2seq_rm.eval.policy import evaluate_policy
from seq2seq_rm.eval.rm_probes import probe_warnings, rm_diagnostics
from seq2seq_rm.judges import GoldJudge, PairwiseJudge, verdicts_to_win_rate
from seq2seq_rm.judges.api import APIJudge
from seq2seq_rm.judges.rm import RewardModelJudge
from seq2seq_rm.models.backbone import context_length, load_backbone, save_backbone
from seq2seq_rm.models.heads import ScalarHeadModel, save_scalar_head, write_rm_type
from seq2seq_rm.models.lora import add_lora
from seq2seq_rm.modules.samples import log_generation_table
from seq2seq_rm.rewards.interface import (
    GoldReward,
    RewardFunction,
    ScalarReward,
    Seq2seqReward,
    fit_length_trend,
    load_reward_model,
)
from seq2seq_rm.tasks.base import Task, TaskData

log = logging.getLogger(__name__)
# PPO checkpoints are meant to hold the state after each iteration's updates
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


@dataclass
class Context:
    cfg: DictConfig
    task: Task
    data: TaskData
    output_dir: Path
    results: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    policy: PreTrainedModel | None = None
    tokenizer: PreTrainedTokenizerBase | None = None
    reward: RewardFunction | None = None
    judge_spec: dict | None = None  # how to rebuild the eval judge (compare uses it for head-to-heads)


def _container(cfg: DictConfig, *keys: str) -> dict:
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
            for k in keys}


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


def _training_setup(cfg: DictConfig) -> dict:
    """The trainer settings that change what a stage learns (not progress bars or logging cadence)."""
    return {k: cfg.trainer.get(k) for k in ("accelerator", "devices", "strategy", "precision", "gradient_clip_val")}


def _trainer(cfg: DictConfig, stage: str, **overrides) -> L.Trainer:
    logger = instantiate(cfg.logger)(stage=stage)
    return instantiate(cfg.trainer, logger=logger, **overrides)


def _cached(ctx: Context, stage: str, artifact: Artifact, build: Callable[[Path], dict[str, float]],
            load: Callable[[Path], None], resume: bool = False) -> dict[str, float]:
    """Reuse a finished artifact, or build it in its ``.partial`` folder and commit it (under a lock,
    so that parallel sweep jobs needing the same artifact build it once)."""
    with artifact.locked():
        if artifact.complete:
            log.info("%s: reusing finished artifact %s", stage, artifact.final)
            ctx.reused.add(stage)
            load(artifact.final)
            return artifact.metrics()
        metrics = build(artifact.begin(resume))
        artifact.commit(metrics)
        return metrics


def run_sft(ctx: Context) -> dict[str, float]:
    """Train the policy on the task's demonstrations, then judge it on held-out prompts."""
    cfg = ctx.cfg
    key = config_key({"task": sft_task_config(cfg, ctx.task), **_container(cfg, "model", "sft", "seed"),
                      "trainer": _training_setup(cfg)})
    ctx.keys["sft"] = key

    def load(directory: Path) -> None:
        ctx.tokenizer = AutoTokenizer.from_pretrained(directory)
        ctx.policy = load_backbone(directory)

    def build(work_dir: Path) -> dict[str, float]:
        tokenizer = instantiate(cfg.model.tokenizer)(vocabulary=ctx.task.vocabulary())
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        model = add_lora(instantiate(cfg.model.backbone)(tokenizer=tokenizer), cfg.model.get("lora"))
        datamodule = SFTDataModule(ctx.data.sft_train, ctx.data.sft_val, tokenizer, batch_size=cfg.sft.batch_size,
                                   max_length=context_length(model), seed=cfg.seed)
        sample_prompts = [d.prompt.text for d in ctx.data.sft_val[: cfg.sft.n_logged_samples]]
        module = instantiate(cfg.sft.module, model=model, tokenizer=tokenizer, sample_prompts=sample_prompts,
                             max_steps=cfg.sft.max_steps, max_new_tokens=cfg.sft.max_new_tokens)
        trainer = _trainer(cfg, "sft", max_steps=cfg.sft.max_steps, val_check_interval=cfg.sft.val_check_interval,
                           check_val_every_n_epoch=None, default_root_dir=str(work_dir))
        trainer.fit(module, datamodule=datamodule)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("sft/val/")}
        policy_metrics, rows = evaluate_policy(
            ctx.task, model, tokenizer, ctx.data.test_prompts[: cfg.sft.n_eval_prompts],
            max_new_tokens=cfg.sft.max_new_tokens, n_samples=cfg.sft.n_eval_samples, seed=cfg.seed)
        metrics.update({f"sft/policy/{k}": v for k, v in policy_metrics.items()})
        save_backbone(model, tokenizer, work_dir)
        with (work_dir / "generations.jsonl").open("w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        ctx.policy, ctx.tokenizer = model, tokenizer
        return metrics

    return _cached(ctx, "sft", Artifact(cfg.paths.artifacts, "sft", key), build, load)


def seq2seq_reward(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, options: DictConfig) -> Seq2seqReward:
    return Seq2seqReward(model, special_ids(tokenizer), **OmegaConf.to_container(options, resolve=True))


def scalar_reward(ctx: Context, model: ScalarHeadModel, options: DictConfig | None) -> ScalarReward:
    """The scalar RM read as configured: plain, minus ``length_penalty`` per token, and/or minus its
    linear fit on length over the RM's own training responses (``decorrelate_length``)."""
    options = options or {}
    reward = ScalarReward(model, special_ids(ctx.tokenizer), length_penalty=float(options.get("length_penalty", 0.0)))
    if options.get("decorrelate_length", False):
        pairs = ctx.data.pairs_train[:1000]
        prompts = [encode(ctx.tokenizer, p.prompt.text) for p in pairs] * 2
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
        raise ValueError(f"{rm_type} RM: no usable pairs left (train {len(train)}, val {len(val)}; skipped "
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
    trainer = _trainer(cfg, "rm", max_steps=max_steps, default_root_dir=str(work_dir))
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


def run_rm(ctx: Context) -> dict[str, float]:
    """Train the configured reward model from the SFT policy on the task's preference pairs (once per
    training config, whatever the read-off), read it as configured, then probe that read-off."""
    cfg, rm_type = ctx.cfg, ctx.cfg.rm.type
    if rm_type not in ("scalar", "seq2seq", "gold"):
        raise ValueError(f"rm.type must be one of ['scalar', 'seq2seq', 'gold'], got {rm_type!r}")
    if "sft" not in ctx.keys:  # the RM starts from the SFT policy and its tokenizer
        ctx.results.update(run_sft(ctx))
    if rm_type == "gold":
        if not ctx.task.has_gold_judge:
            raise ValueError(f"rm=gold needs a gold judge, and task {ctx.task.name} has none: use rm=scalar|seq2seq")
        ctx.reward = GoldReward(ctx.task, ctx.tokenizer)
        return {}
    # the task config as a whole: the SFT key leaves out the knobs that shape the pairs, and they shape this RM
    key = config_key({"sft": ctx.keys["sft"], "pairs": _container(cfg, "task")["task"],
                      "rm": rm_training_config(cfg.rm), "trainer": _training_setup(cfg)})
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

    metrics = dict(_cached(ctx, "rm", Artifact(cfg.paths.artifacts, f"rm_{rm_type}", key), build, load))
    model = models[0]
    ctx.reward = (scalar_reward(ctx, model, cfg.rm.get("reward")) if rm_type == "scalar"
                  else seq2seq_reward(model, ctx.tokenizer, cfg.rm.reward))
    metrics.update(_probe_read_offs(ctx, model))
    scorer = read_off_label(cfg.rm)
    prefix = f"rm/probe/{scorer}/"
    for warning in probe_warnings(ctx.task.name, {k[len(prefix):]: v for k, v in metrics.items()
                                                  if k.startswith(prefix)}):
        warning = f"{warning} (read-off: {scorer})"
        log.warning(warning)
        print(f"[rm] WARNING: {warning}", flush=True)
        ctx.warnings.append(warning)
    return metrics


def run_ppo(ctx: Context) -> dict[str, float]:
    """PPO from the SFT policy against the run's reward function; resumes from its last checkpoint."""
    cfg = ctx.cfg
    if "rm" not in ctx.keys and ctx.reward is None:
        ctx.results.update(run_rm(ctx))
    read_off = OmegaConf.to_container(cfg.rm.reward, resolve=True) if cfg.rm.get("reward") else None
    key = config_key({"sft": ctx.keys["sft"], "rm": ctx.keys.get("rm", cfg.rm.type), "read_off": read_off,
                      "ppo": _container(cfg, "ppo")["ppo"], "seed": cfg.seed, "trainer": _training_setup(cfg)})
    ctx.keys["ppo"] = key
    ppo = cfg.ppo
    updates_per_iteration = ppo.module.epochs * ppo.module.minibatches

    def load(directory: Path) -> None:
        ctx.policy = load_backbone(directory)

    def build(work_dir: Path) -> dict[str, float]:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        policy = add_lora(load_backbone(artifact_dir(cfg, "sft", ctx.keys["sft"])).train(), cfg.model.get("lora"))
        prompts = [encode(ctx.tokenizer, p.text) for p in ctx.data.rl_prompts]
        module = instantiate(ppo.module, policy=policy, reward=ctx.reward, ids=special_ids(ctx.tokenizer),
                             prompts=prompts, seed=cfg.seed,
                             judge=GoldReward(ctx.task, ctx.tokenizer) if ctx.task.has_gold_judge else None)
        checkpoints = work_dir / "checkpoints"
        every = ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=ppo.checkpoint_every * updates_per_iteration,
                                save_last=True, save_top_k=0)
        trainer = _trainer(cfg, "ppo", max_steps=ppo.iterations * updates_per_iteration, max_epochs=-1,
                           callbacks=[every], enable_checkpointing=True, gradient_clip_val=None,
                           default_root_dir=str(work_dir), log_every_n_steps=1)
        last = checkpoints / "last.ckpt"
        loader = DataLoader(range(ppo.iterations), batch_size=1)
        trainer.fit(module, train_dataloaders=loader, ckpt_path=str(last) if last.is_file() else None,
                    weights_only=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("ppo/train/")}
        policy.eval()
        policy_metrics, rows = evaluate_policy(
            ctx.task, policy, ctx.tokenizer, ctx.data.test_prompts[: ppo.n_eval_prompts],
            max_new_tokens=ppo.module.max_new_tokens, n_samples=ppo.n_eval_samples, seed=cfg.seed)
        metrics.update({f"ppo/policy/{k}": v for k, v in policy_metrics.items()})
        save_backbone(policy, ctx.tokenizer, work_dir)
        with (work_dir / "generations.jsonl").open("w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        shutil.rmtree(checkpoints, ignore_errors=True)  # the finished artifact keeps the policy, not the optimiser
        ctx.policy = policy
        return metrics

    return _cached(ctx, "ppo", Artifact(cfg.paths.artifacts, "ppo", key), build, load, resume=True)


def run_judge(ctx: Context) -> PairwiseJudge:
    """The eval judge of ``cfg.judge``; ``judge=rm`` without a path trains (once, cached) a scalar RM
    on the task's judge split, pairs that neither arm's reward model sees."""
    cfg, judge_cfg = ctx.cfg, ctx.cfg.judge
    if judge_cfg.type == "gold":
        return GoldJudge(ctx.task)
    if judge_cfg.type == "api":
        options = OmegaConf.to_container(judge_cfg, resolve=True)
        ctx.judge_spec = dict(options)
        options.pop("type")
        return APIJudge(**options)
    if judge_cfg.type != "rm":
        raise ValueError(f"judge.type must be one of ['gold', 'rm', 'api'], got {judge_cfg.type!r}")
    if judge_cfg.path:
        ctx.judge_spec = {"type": "rm", "path": str(Path(judge_cfg.path).resolve())}
        return RewardModelJudge.from_directory(judge_cfg.path)
    if not ctx.data.pairs_judge:
        raise ValueError(f"judge=rm without judge.path needs held-out judge pairs, and task {ctx.task.name} has "
                         "none: give judge.path=<a scalar RM checkpoint folder>")
    key = config_key({"sft": ctx.keys["sft"], "judge": _container(cfg, "judge")["judge"],
                      "trainer": _training_setup(cfg)})
    ctx.keys["judge_rm"] = key
    artifact = Artifact(cfg.paths.artifacts, "judge_rm", key)

    def build(work_dir: Path) -> dict[str, float]:
        pairs = ctx.data.pairs_judge
        n_val = max(1, len(pairs) // 10)
        model, _, metrics = fit_reward_model(ctx, judge_cfg.train, pairs[n_val:], pairs[:n_val], work_dir)
        save_scalar_head(model, work_dir)
        ctx.tokenizer.save_pretrained(work_dir)
        write_rm_type(work_dir, "scalar")
        return {f"judge/{k.split('/', 1)[1]}": v for k, v in metrics.items()}

    ctx.results.update(_cached(ctx, "judge_rm", artifact, build, lambda directory: None))
    ctx.judge_spec = {"type": "rm", "path": str(Path(artifact.final).resolve())}
    return RewardModelJudge.from_directory(artifact.final)


def _gold_eval(ctx: Context, prompts: list, greedy: list[str], sft_greedy: list[str],
               sft_policy: PreTrainedModel) -> tuple[dict, list[dict], list[dict]]:
    """Gold-judge metrics of an embedded task: utility, bias metrics and win rate vs SFT, under greedy
    decoding and on samples (``eval.n_samples`` per prompt from both the policy and the SFT policy: RL
    optimises the sampling policy, so the sampled win rate is the headline; greedy is reported beside it)."""
    cfg, ev = ctx.cfg, ctx.cfg.eval
    texts = [p.text for p in prompts]
    sampled_prompts = [p for p in prompts for _ in range(ev.n_samples)]
    sampled_texts = [p.text for p in sampled_prompts]
    torch.manual_seed(cfg.seed)
    sampled = generate_responses(ctx.policy, ctx.tokenizer, sampled_texts, ev.max_new_tokens,
                                 do_sample=True, temperature=ev.temperature)
    torch.manual_seed(cfg.seed + 1)
    sft_sampled = generate_responses(sft_policy, ctx.tokenizer, sampled_texts, ev.max_new_tokens,
                                     do_sample=True, temperature=ev.temperature)
    judged = [ctx.task.judge(t, r) for t, r in zip(texts, greedy, strict=True)]
    sft_judged = [ctx.task.judge(t, r) for t, r in zip(texts, sft_greedy, strict=True)]
    sampled_judged = [ctx.task.judge(t, r) for t, r in zip(sampled_texts, sampled, strict=True)]
    sft_sampled_judged = [ctx.task.judge(t, r) for t, r in zip(sampled_texts, sft_sampled, strict=True)]
    metrics = {f"eval/{k}": v for k, v in bias_metrics(ctx.task.name, prompts, judged, greedy).items()}
    metrics.update({f"eval/sampled/{k}": v for k, v in
                    bias_metrics(ctx.task.name, sampled_prompts, sampled_judged, sampled).items()})
    metrics["eval/win_rate_vs_sft"] = win_rate([j.utility for j in judged], [j.utility for j in sft_judged])
    metrics["eval/sampled/win_rate_vs_sft"] = win_rate([j.utility for j in sampled_judged],
                                                       [j.utility for j in sft_sampled_judged])
    metrics["eval/sampled/sft_gold_utility"] = fmean(j.utility for j in sft_sampled_judged)
    rows = [{"gold_utility": j.utility, "response_kind": j.kind, "labels": j.labels,
             "gold_token_labels": j.token_labels, "sft_gold_utility": sj.utility}
            for j, sj in zip(judged, sft_judged, strict=True)]
    samples = [{"prompt_index": i // ev.n_samples, "sample": i % ev.n_samples, "prompt": p.text, "prompt_kind": p.kind,
                "response": r, "gold_utility": j.utility, "response_kind": j.kind, "length": len(r.split()),
                "sft_response": sr, "sft_gold_utility": sj.utility}
               for i, (p, r, j, sr, sj) in enumerate(zip(sampled_prompts, sampled, sampled_judged, sft_sampled,
                                                         sft_sampled_judged, strict=True))]
    return metrics, rows, samples


def run_eval(ctx: Context) -> dict[str, float]:
    """Judge the run's last policy (PPO's if it ran, else SFT's) on held-out prompts against the SFT
    policy; write every generation, with the run's per-token rewards, to generations.jsonl.

    Embedded tasks are judged by their gold judge; a judge other than gold (``judge=rm|api``) also
    gives ``eval/judge/win_rate_vs_sft``, and is the only judge of a real-data task."""
    cfg, ev = ctx.cfg, ctx.cfg.eval
    if ctx.policy is None:
        ctx.results.update(run_ppo(ctx))
    prompts = ctx.data.test_prompts[: ev.n_prompts]
    texts = [p.text for p in prompts]
    ctx.policy.eval()
    sft_policy = load_backbone(artifact_dir(cfg, "sft", ctx.keys["sft"])).eval()
    greedy = generate_responses(ctx.policy, ctx.tokenizer, texts, ev.max_new_tokens)
    sft_greedy = generate_responses(sft_policy, ctx.tokenizer, texts, ev.max_new_tokens)
    metrics = {"eval/length_mean": fmean(len(r.split()) for r in greedy),
               "eval/sft_length_mean": fmean(len(r.split()) for r in sft_greedy)}
    gold_rows: list[dict] = [{} for _ in prompts]
    if ctx.task.has_gold_judge:
        gold_metrics, gold_rows, samples = _gold_eval(ctx, prompts, greedy, sft_greedy, sft_policy)
        metrics.update(gold_metrics)
        with (ctx.output_dir / "samples.jsonl").open("w") as f:
            f.writelines(json.dumps(row) + "\n" for row in samples)
    verdicts = None
    if cfg.judge.type != "gold" or not ctx.task.has_gold_judge:
        judge = run_judge(ctx)
        verdicts = judge.compare(texts, greedy, sft_greedy)
        metrics["eval/judge/win_rate_vs_sft"] = verdicts_to_win_rate(verdicts)
        metrics.update({f"eval/judge/{k}": v for k, v in judge.statistics().items()})
        if not ctx.task.has_gold_judge:
            metrics["eval/win_rate_vs_sft"] = metrics["eval/judge/win_rate_vs_sft"]

    token_rewards = None
    if ctx.reward is not None:
        prompt_ids = [encode(ctx.tokenizer, t) for t in texts]
        response_ids = [encode(ctx.tokenizer, r) for r in greedy]
        token_rewards = ctx.reward.token_rewards(prompt_ids, response_ids)
    rows = []
    for i, (prompt, response, sft_response) in enumerate(zip(prompts, greedy, sft_greedy, strict=True)):
        n_tokens = len(encode(ctx.tokenizer, response))
        rows.append({"prompt": prompt.text, "prompt_kind": prompt.kind, "response": response,
                     "tokens": ctx.tokenizer.convert_ids_to_tokens(encode(ctx.tokenizer, response)),
                     **gold_rows[i],
                     "token_rewards": token_rewards[i, :n_tokens].tolist() if token_rewards is not None else None,
                     "sft_response": sft_response,
                     **({"judge_verdict_vs_sft": verdicts[i]} if verdicts is not None else {})})
    with (ctx.output_dir / "generations.jsonl").open("w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    logger = instantiate(cfg.logger)(stage="eval")
    logger.log_metrics(metrics)
    log_generation_table(logger, "eval/generations", rows[: ev.n_logged])
    logger.finalize("success")
    return metrics


def artifact_dir(cfg: DictConfig, stage: str, key: str) -> Path:
    return Artifact(cfg.paths.artifacts, stage, key).final


STAGES: dict[str, Callable[[Context], dict[str, float]]] = {
    "sft": run_sft, "rm": run_rm, "ppo": run_ppo, "eval": run_eval}


def finish_wandb_run() -> None:
    """One W&B run per stage (job_type = stage): close the stage's run before the next one starts."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def validate_stages(stages: list[str]) -> None:
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; valid stages, in order: {list(STAGES)}")
    order = [s for s in STAGES if s in stages]
    if list(stages) != order or len(set(stages)) != len(stages):
        raise ValueError(f"stages must run in pipeline order {list(STAGES)}, got {list(stages)}")


def one_line_summary(stage: str, metrics: dict[str, float], seconds: float, cached: bool) -> str:
    headline = sorted(metrics, key=lambda k: ("/val/" not in k, "/policy/" not in k, k))
    shown = [k for k in headline if "/mix/" not in k and "/probe/" not in k][:6]
    parts = ", ".join(f"{k.split('/', 1)[1]}={metrics[k]:.3f}" for k in shown)
    how = "(cached)" if cached else f"in {seconds:.0f}s"
    return f"[{stage}] done {how}: {parts}"


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Run ``cfg.stages`` in order, write ``results.json`` in ``output_dir`` and return the metrics."""
    stages = list(cfg.stages)
    validate_stages(stages)
    torch.set_num_threads(int(cfg.threads))
    task: Task = instantiate(cfg.task)
    output_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(cfg=cfg, task=task, data=task.generate(), output_dir=output_dir)
    ctx.results.update(ctx.data.stats)
    for stage in stages:
        start = time.perf_counter()
        metrics = STAGES[stage](ctx)
        finish_wandb_run()
        ctx.results.update(metrics)
        cached = stage in ctx.reused
        print(one_line_summary(stage, metrics, time.perf_counter() - start, cached), flush=True)
    arm = {"rm": cfg.rm.type, "arm": arm_label(cfg.rm), "rm_scorer": read_off_label(cfg.rm)} if "rm" in stages else {}
    knobs = {f"knob/{k}": cfg.task[k] for k in ("annotator", "length_bias", "p_long", "q", "p_alarm", "noise")
             if k in cfg.task}
    results = {"task": task.name, "seed": int(cfg.seed), **arm, **knobs, **{f"key/{k}": v for k, v in ctx.keys.items()},
               **({"judge": ctx.judge_spec} if ctx.judge_spec else {}),
               "warnings": ctx.warnings, **dict(sorted(ctx.results.items()))}
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    return ctx.results

"""The staged pipeline: each stage reads the config, builds its parts with Hydra, caches its artifact."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.artifacts import Artifact, config_key
from seq2seq_rm.data.sft import SFTDataModule
from seq2seq_rm.eval.policy import evaluate_policy
from seq2seq_rm.models.backbone import context_length, load_backbone, save_backbone
from seq2seq_rm.tasks.base import Task, TaskData

log = logging.getLogger(__name__)


@dataclass
class Context:
    cfg: DictConfig
    task: Task
    data: TaskData
    output_dir: Path
    results: dict[str, float] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    policy: PreTrainedModel | None = None
    tokenizer: PreTrainedTokenizerBase | None = None


def _container(cfg: DictConfig, *keys: str) -> dict:
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
            for k in keys}


def _trainer(cfg: DictConfig, stage: str, **overrides) -> L.Trainer:
    logger = instantiate(cfg.logger)(stage=stage)
    return instantiate(cfg.trainer, logger=logger, **overrides)


def run_sft(ctx: Context) -> dict[str, float]:
    cfg = ctx.cfg
    key = config_key({"task": _container(cfg, "task"), **_container(cfg, "model", "sft", "seed")})
    ctx.keys["sft"] = key
    artifact = Artifact(cfg.paths.artifacts, "sft", key)
    if artifact.complete:
        log.info("sft: reusing finished artifact %s", artifact.final)
        ctx.reused.add("sft")
        from transformers import AutoTokenizer

        ctx.tokenizer = AutoTokenizer.from_pretrained(artifact.final)
        ctx.policy = load_backbone(artifact.final)
        return artifact.metrics()

    work_dir = artifact.begin()
    tokenizer = instantiate(cfg.model.tokenizer)(vocabulary=ctx.task.vocabulary())
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = instantiate(cfg.model.backbone)(tokenizer=tokenizer)
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
    artifact.commit(metrics)
    ctx.policy, ctx.tokenizer = model, tokenizer
    return metrics


STAGES: dict[str, Callable[[Context], dict[str, float]]] = {"sft": run_sft}


def validate_stages(stages: list[str]) -> None:
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; valid stages, in order: {list(STAGES)}")
    order = [s for s in STAGES if s in stages]
    if list(stages) != order:
        raise ValueError(f"stages must run in pipeline order {list(STAGES)}, got {list(stages)}")


def one_line_summary(stage: str, metrics: dict[str, float], seconds: float, cached: bool) -> str:
    shown = {k: v for k, v in metrics.items() if "/mix/" not in k}
    parts = ", ".join(f"{k.split('/', 1)[1]}={v:.3f}" for k, v in sorted(shown.items())[:6])
    how = "(cached)" if cached else f"in {seconds:.0f}s"
    return f"[{stage}] done {how}: {parts}"


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Run ``cfg.stages`` in order, write ``results.json`` in ``output_dir`` and return the metrics."""
    stages = list(cfg.stages)
    validate_stages(stages)
    torch.set_num_threads(int(cfg.threads))
    task: Task = instantiate(cfg.task)
    ctx = Context(cfg=cfg, task=task, data=task.generate(), output_dir=output_dir)
    for stage in stages:
        start = time.perf_counter()
        metrics = STAGES[stage](ctx)
        ctx.results.update(metrics)
        cached = stage in ctx.reused
        print(one_line_summary(stage, metrics, time.perf_counter() - start, cached), flush=True)
    results = {"task": task.name, "seed": int(cfg.seed), **{f"key/{k}": v for k, v in ctx.keys.items()},
               **dict(sorted(ctx.results.items()))}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    return ctx.results

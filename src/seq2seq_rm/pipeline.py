"""The pipeline, top to bottom: build the task, run the requested stages in order, write results.json.

Each stage lives in ``seq2seq_rm.stages.<name>`` with one ``run(ctx)``; a stage that needs an earlier
one's artifact runs it first (from the cache when it is finished), so ``stages=[ppo]`` alone works.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from seq2seq_rm.config_check import check_config
from seq2seq_rm.config_tree import show_and_save
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.resources import stage_resources
from seq2seq_rm.stages import eval as eval_stage
from seq2seq_rm.stages import ppo, rm, sft
from seq2seq_rm.stages.context import Context
from seq2seq_rm.stages.keys import arm_label, read_off_label
from seq2seq_rm.tasks.base import Task

STAGES: dict[str, Callable[[Context], dict[str, float]]] = {
    "sft": sft.run, "rm": rm.run, "ppo": ppo.run, "eval": eval_stage.run}


def finish_wandb_run() -> None:
    """One W&B run per stage (job_type = stage): close the stage's run before the next one starts."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def validate_stages(stages: list[str]) -> None:
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; valid stages, in order: {list(STAGES)}")
    order = [s for s in STAGES if s in stages]
    if list(stages) != order or len(set(stages)) != len(stages):
        raise ConfigError(f"stages must run in pipeline order {list(STAGES)}, got {list(stages)}")


def environment() -> dict[str, str | int]:
    """What the digits of a result depend on besides the config: same seed and same environment give
    identical results; another CPU kernel set (or torch build) may change the digits, not the findings."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "platform": platform.platform(), "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else "none"}


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
    check_config(cfg, stages)  # every key the stages will use, before any work
    torch.set_num_threads(int(cfg.threads))
    task: Task = instantiate(cfg.task)
    output_dir.mkdir(parents=True, exist_ok=True)
    show_and_save(cfg, output_dir, show=bool(cfg.get("print_config", True)))
    ctx = Context(cfg=cfg, task=task, data=task.generate(), output_dir=output_dir)
    ctx.results.update(ctx.data.stats)
    resources: dict[str, dict] = {}
    for stage in stages:
        with stage_resources(resources.setdefault(stage, {})) as used:
            metrics = STAGES[stage](ctx)
            finish_wandb_run()
        used["cached"] = stage in ctx.reused
        ctx.results.update(metrics)
        print(one_line_summary(stage, metrics, used["seconds"], used["cached"]), flush=True)
    arm = {"rm": cfg.rm.type, "arm": arm_label(cfg.rm), "rm_scorer": read_off_label(cfg.rm)} if "rm" in stages else {}
    knobs = {f"knob/{k}": cfg.task[k] for k in ("annotator", "length_bias", "p_long", "q", "p_alarm", "noise")
             if k in cfg.task}
    results = {"task": task.name, "seed": int(cfg.seed), **arm, **knobs, **{f"key/{k}": v for k, v in ctx.keys.items()},
               **({"judge": ctx.judge_spec} if ctx.judge_spec else {}),
               **({"tuned": cfg.tuned} if cfg.get("tuned") else {}),
               "warnings": ctx.warnings, "environment": environment(), "resources": resources,
               **dict(sorted(ctx.results.items()))}
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    return ctx.results

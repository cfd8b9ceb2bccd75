"""What every stage shares: the run context, config slices, the Lightning trainer and the artifact cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelSummary, ProgressBar
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.artifacts import Artifact, ArtifactDamaged
from seq2seq_rm.rewards.interface import RewardFunction
from seq2seq_rm.tasks.base import Task, TaskData

log = logging.getLogger(__name__)


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
    extra_prompt_sets: dict[str, list] = field(default_factory=dict)  # eval: prompt sets from eval.ood_task

    def warn(self, stage: str, warning: str) -> None:
        """Say it in the run's log and console, and keep it in results.json."""
        log.warning(warning)
        print(f"[{stage}] WARNING: {warning}", flush=True)
        self.warnings.append(warning)


def container(cfg: DictConfig, *keys: str) -> dict:
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
            for k in keys}


# debug flags (conf/debug) that change what is learned: part of the key only when set, so that the keys
# of ordinary runs stay what they were
DEBUG_FLAGS = ("fast_dev_run", "overfit_batches", "limit_train_batches", "limit_val_batches")


def training_setup(cfg: DictConfig) -> dict:
    """The trainer settings that change what a stage learns (not progress bars or logging cadence)."""
    setup = {k: cfg.trainer.get(k) for k in ("accelerator", "devices", "strategy", "precision", "gradient_clip_val")}
    return setup | {k: cfg.trainer[k] for k in DEBUG_FLAGS if cfg.trainer.get(k) not in (None, False, 0, 0.0)}


def configured_callbacks(cfg: DictConfig) -> list[Callback]:
    """The ``callbacks`` group, without a progress bar where the trainer has progress bars off."""
    callbacks = [instantiate(spec) for spec in (cfg.get("callbacks") or {}).values() if spec]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return callbacks


def make_trainer(cfg: DictConfig, stage: str, callbacks: list[Callback] | None = None, **overrides) -> L.Trainer:
    logger = instantiate(cfg.logger)(stage=stage)
    every = configured_callbacks(cfg) + list(callbacks or [])
    if any(isinstance(c, ModelSummary) for c in every):
        overrides.setdefault("enable_model_summary", True)
    return instantiate(cfg.trainer, logger=logger, callbacks=every, **overrides)


def cached(ctx: Context, stage: str, artifact: Artifact, build: Callable[[Path], dict[str, float]],
            load: Callable[[Path], None], resume: bool = False) -> dict[str, float]:
    """Reuse a finished artifact, or build it in its ``.partial`` folder and commit it (under a lock,
    so that parallel sweep jobs needing the same artifact build it once)."""
    with artifact.locked():
        if artifact.complete:
            damage = artifact.damage()
            if damage is None:
                log.info("%s: reusing finished artifact %s", stage, artifact.final)
                ctx.reused.add(stage)
                try:
                    load(artifact.final)
                except Exception as error:  # files match the manifest (or predate it): say which folder, keep it
                    raise ArtifactDamaged(
                        f"{stage}: the finished artifact {artifact.final} cannot be loaded "
                        f"({type(error).__name__}: {error}); delete that folder to rebuild it") from error
                return artifact.metrics()
            aside = artifact.quarantine()
            warning = f"{stage}: artifact {artifact.final} is damaged ({damage}); moved to {aside.name}, rebuilding"
            ctx.warn(stage, warning)
        metrics = build(artifact.begin(resume))
        artifact.commit(metrics)
        return metrics


def artifact_dir(cfg: DictConfig, stage: str, key: str) -> Path:
    return Artifact(cfg.paths.artifacts, stage, key).final



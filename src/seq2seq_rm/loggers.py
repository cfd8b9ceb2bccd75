"""Logger factories with one signature, ``(stage) -> Logger``, so the pipeline stays logger-agnostic."""

from __future__ import annotations

import os

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger


def csv_logger(stage: str, save_dir: str) -> Logger:
    return CSVLogger(save_dir=save_dir, name="logs", version=stage)


def tensorboard_logger(stage: str, save_dir: str) -> Logger:
    return TensorBoardLogger(save_dir=save_dir, name="tensorboard", version=stage)


def wandb_logger(stage: str, save_dir: str, project: str, group: str, tags: list[str],
                 mode: str = "offline", run_name: str | None = None) -> Logger:
    """W&B run per stage: group = experiment, job_type = stage. Offline unless ``mode`` says otherwise."""
    mode = os.environ.get("WANDB_MODE", mode)
    return WandbLogger(save_dir=save_dir, project=project, group=group, job_type=stage, tags=list(tags),
                       name=f"{run_name or group}-{stage}", mode=mode)

"""Log a few sample generations with whatever logger the run uses."""

from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger


def log_samples(logger: Logger | None, key: str, rows: list[dict], step: int) -> None:
    if logger is None or not rows:
        return
    if isinstance(logger, WandbLogger):
        columns = list(rows[0])
        logger.log_table(key=key, columns=columns, data=[[r[c] for c in columns] for r in rows], step=step)
    elif isinstance(logger, TensorBoardLogger):
        text = "\n\n".join(" | ".join(f"**{k}**: {v}" for k, v in r.items()) for r in rows)
        logger.experiment.add_text(key, text, global_step=step)
    elif getattr(logger, "log_dir", None):
        path = Path(logger.log_dir) / "samples.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            for row in rows:
                f.write(json.dumps({"key": key, "step": step, **row}) + "\n")

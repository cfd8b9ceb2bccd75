"""Log a few sample generations with whatever logger the run uses."""

from __future__ import annotations

import html
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


def token_reward_html(tokens: list[str], rewards: list[float] | None) -> str:
    """Tokens as HTML spans shaded green (positive reward) or red (negative), reward in the tooltip."""
    spans = []
    for i, token in enumerate(tokens):
        reward = rewards[i] if rewards and i < len(rewards) else 0.0
        alpha = min(1.0, abs(reward)) * 0.6
        colour = f"rgba(0,160,0,{alpha:.2f})" if reward >= 0 else f"rgba(220,0,0,{alpha:.2f})"
        spans.append(f'<span style="background:{colour}" title="{reward:+.3f}">{html.escape(token)}</span>')
    return " ".join(spans)


def log_generation_table(logger: Logger | None, key: str, rows: list[dict]) -> None:
    """A W&B table of generations with per-token rewards as coloured text (other loggers: nothing,
    the run folder's generations.jsonl holds the same rows)."""
    if not isinstance(logger, WandbLogger) or not rows:
        return
    import wandb

    columns = ["prompt", "prompt_kind", "response", "gold_utility", "response_kind", "token_rewards"]
    data = [[r["prompt"], r["prompt_kind"], r["response"], r.get("gold_utility"), r.get("response_kind"),
             wandb.Html(token_reward_html(r["tokens"], r["token_rewards"]))] for r in rows]
    logger.experiment.log({key: wandb.Table(columns=columns, data=data)})

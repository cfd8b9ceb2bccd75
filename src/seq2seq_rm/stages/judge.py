"""The eval judge of ``cfg.judge``: gold, an OpenAI-compatible API, or a held-out scalar RM (trained once, cached)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from seq2seq_rm.artifacts import Artifact, config_key
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.judges import GoldJudge, PairwiseJudge
from seq2seq_rm.judges.api import APIJudge
from seq2seq_rm.judges.rm import RewardModelJudge
from seq2seq_rm.models.heads import save_scalar_head, write_rm_type
from seq2seq_rm.stages.context import Context, cached, container, training_setup
from seq2seq_rm.stages.rm import fit_reward_model


def weak_judge_warning(accuracy: float | None, n_held_out: int, min_accuracy: float = 0.6,
                       min_pairs: int = 50) -> str | None:
    """Why a trained judge RM's verdicts are weak evidence, if they are: every win rate on a task without a
    gold judge rests on them."""
    if accuracy is None or (accuracy >= min_accuracy and n_held_out >= min_pairs):
        return None
    return (f"the judge RM's held-out pairwise accuracy is {accuracy:.2f} on {n_held_out} pairs, so its verdicts "
            "(every win rate of this run) are weak evidence: give it more pairs (task.judge_fraction, "
            "judge.held_out_fraction, more data), "
            "a trained judge (judge.path) or judge=api")


def run(ctx: Context) -> PairwiseJudge:
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
        raise ConfigError(f"judge.type must be one of ['gold', 'rm', 'api'], got {judge_cfg.type!r}")
    if judge_cfg.path:
        ctx.judge_spec = {"type": "rm", "path": str(Path(judge_cfg.path).resolve())}
        return RewardModelJudge.from_directory(judge_cfg.path)
    if not ctx.data.pairs_judge:
        raise ConfigError(f"judge=rm without judge.path needs held-out judge pairs, and task {ctx.task.name} has "
                         "none: give judge.path=<a scalar RM checkpoint folder>")
    key = config_key({"sft": ctx.keys["sft"], "judge": container(cfg, "judge")["judge"],
                      "trainer": training_setup(cfg)})
    ctx.keys["judge_rm"] = key
    artifact = Artifact(cfg.paths.artifacts, "judge_rm", key)

    # the judge's held-out pairs (judge.held_out_fraction is range-checked with the config, before any stage)
    n_val = max(1, int(len(ctx.data.pairs_judge) * judge_cfg.held_out_fraction + 1e-9))

    def build(work_dir: Path) -> dict[str, float]:
        pairs = ctx.data.pairs_judge
        model, _, metrics = fit_reward_model(ctx, judge_cfg.train, pairs[n_val:], pairs[:n_val], work_dir)
        save_scalar_head(model, work_dir)
        ctx.tokenizer.save_pretrained(work_dir)
        write_rm_type(work_dir, "scalar")
        return {f"judge/{k.split('/', 1)[1]}": v for k, v in metrics.items()} | {"judge/held_out_pairs": n_val}

    metrics = cached(ctx, "judge_rm", artifact, build, lambda directory: None)
    ctx.results.update(metrics)
    warning = weak_judge_warning(metrics.get("judge/val/accuracy"), n_val)
    if warning:
        ctx.warn("judge", warning)
    ctx.judge_spec = {"type": "rm", "path": str(Path(artifact.final).resolve())}
    return RewardModelJudge.from_directory(artifact.final)



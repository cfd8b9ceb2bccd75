"""Stage ppo: PPO from the SFT policy against the run's reward function; resumes from its last checkpoint."""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from seq2seq_rm.artifacts import Artifact, config_key
from seq2seq_rm.data.tokenizer import encode_prompt, special_ids
from seq2seq_rm.eval.policy import evaluate_policy
from seq2seq_rm.models.backbone import load_backbone, save_backbone
from seq2seq_rm.models.lora import add_lora
from seq2seq_rm.rewards.interface import GoldReward
from seq2seq_rm.stages import rm
from seq2seq_rm.stages.context import Context, artifact_dir, cached, container, make_trainer, training_setup

# PPO checkpoints are meant to hold the state after each iteration's updates
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


def readable_checkpoint(path: Path) -> bool:
    """Whether a torch checkpoint's zip directory is intact (cheap: a cut-off write loses the directory,
    which sits at the end of the file). DeepSpeed writes a checkpoint as a folder: one that is not empty."""
    if path.is_dir():
        return any(path.iterdir())
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def run(ctx: Context) -> dict[str, float]:
    """PPO from the SFT policy against the run's reward function; resumes from its last checkpoint."""
    cfg = ctx.cfg
    if "rm" not in ctx.keys and ctx.reward is None:
        ctx.results.update(rm.run(ctx))
    read_off = OmegaConf.to_container(cfg.rm.reward, resolve=True) if cfg.rm.get("reward") else None
    key = config_key({"sft": ctx.keys["sft"], "rm": ctx.keys.get("rm", cfg.rm.type), "read_off": read_off,
                      "ppo": container(cfg, "ppo")["ppo"], "seed": cfg.seed, "trainer": training_setup(cfg)})
    ctx.keys["ppo"] = key
    ppo = cfg.ppo
    updates_per_iteration = ppo.module.epochs * ppo.module.minibatches

    def load(directory: Path) -> None:
        ctx.policy = load_backbone(directory)

    def build(work_dir: Path) -> dict[str, float]:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        policy = add_lora(load_backbone(artifact_dir(cfg, "sft", ctx.keys["sft"])).train(), cfg.model.get("lora"))
        prompts = [encode_prompt(ctx.tokenizer, p.text) for p in ctx.data.rl_prompts]
        module = instantiate(ppo.module, policy=policy, reward=ctx.reward, ids=special_ids(ctx.tokenizer),
                             prompts=prompts, seed=cfg.seed,
                             judge=GoldReward(ctx.task, ctx.tokenizer) if ctx.task.has_gold_judge else None)
        checkpoints = work_dir / "checkpoints"
        every = ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=ppo.checkpoint_every * updates_per_iteration,
                                save_last=True, save_top_k=0)
        trainer = make_trainer(cfg, "ppo", max_steps=ppo.iterations * updates_per_iteration, max_epochs=-1,
                           callbacks=[every], enable_checkpointing=True, gradient_clip_val=None,
                           default_root_dir=str(work_dir), log_every_n_steps=1)
        last = checkpoints / "last.ckpt"
        if last.exists() and not readable_checkpoint(last):
            warning = f"ppo: checkpoint {last} is damaged (truncated?); deleted, PPO starts again from the SFT policy"
            ctx.warn("ppo", warning)
            if last.is_dir():
                shutil.rmtree(last)
            else:
                last.unlink()
        loader = DataLoader(range(ppo.iterations), batch_size=1)
        trainer.fit(module, train_dataloaders=loader, ckpt_path=str(last) if last.exists() else None,
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

    return cached(ctx, "ppo", Artifact(cfg.paths.artifacts, "ppo", key), build, load, resume=True)



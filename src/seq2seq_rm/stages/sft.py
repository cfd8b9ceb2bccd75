"""Stage sft: train the policy on the task's demonstrations, then judge it on held-out prompts."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from transformers import AutoTokenizer

from seq2seq_rm.artifacts import Artifact, config_key
from seq2seq_rm.data.sft import SFTDataModule
from seq2seq_rm.eval.policy import evaluate_policy
from seq2seq_rm.models.backbone import context_length, load_backbone, save_backbone
from seq2seq_rm.models.lora import add_lora
from seq2seq_rm.stages.context import Context, cached, container, make_trainer, training_setup
from seq2seq_rm.stages.keys import sft_task_config


def run(ctx: Context) -> dict[str, float]:
    """Train the policy on the task's demonstrations, then judge it on held-out prompts."""
    cfg = ctx.cfg
    key = config_key({"task": sft_task_config(cfg, ctx.task), **container(cfg, "model", "sft", "seed"),
                      "trainer": training_setup(cfg)})
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
        trainer = make_trainer(cfg, "sft", max_steps=cfg.sft.max_steps, val_check_interval=cfg.sft.val_check_interval,
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

    return cached(ctx, "sft", Artifact(cfg.paths.artifacts, "sft", key), build, load)



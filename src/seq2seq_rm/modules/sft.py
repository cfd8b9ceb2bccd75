"""Supervised fine-tuning of the policy on demonstrations (loss on response tokens only)."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics import MeanMetric
from torchmetrics.text import Perplexity
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.data.layout import IGNORE_INDEX
from seq2seq_rm.models.generation import generate_responses
from seq2seq_rm.modules.optim import adamw_warmup_cosine
from seq2seq_rm.modules.samples import log_samples
from seq2seq_rm.modules.sharded import ShardedCalls


class SFTModule(ShardedCalls, L.LightningModule):
    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        max_steps: int = 1000,
        sample_prompts: list[str] | None = None,
        max_new_tokens: int = 32,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model", "tokenizer", "sample_prompts"])
        self.model, self.tokenizer = model, tokenizer
        self.sample_prompts = list(sample_prompts or [])
        self.val_loss = MeanMetric()
        self.val_perplexity = Perplexity(ignore_index=IGNORE_INDEX)

    def configure_model(self) -> None:
        self.shard_groups(model={"model": self.model})

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.through("model", self.model, **batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"SFT loss is {loss.item()} at step {self.global_step}; lower sft.lr")
        self.log("sft/train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.through("model", self.model, **batch)
        n_targets = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
        self.val_loss.update(out.loss, weight=n_targets)
        self.val_perplexity.update(out.logits[:, :-1].float(), batch["labels"][:, 1:])

    def on_validation_epoch_end(self) -> None:
        self.log("sft/val/loss", self.val_loss.compute(), prog_bar=True)
        self.log("sft/val/perplexity", self.val_perplexity.compute())
        self.val_loss.reset()
        self.val_perplexity.reset()
        if self.sample_prompts and self.tokenizer is not None and not self.trainer.sanity_checking:
            responses = self.through("model", generate_responses, self.model, self.tokenizer, self.sample_prompts,
                                     self.hparams.max_new_tokens, synced_gpus=self.synced_generation)
            rows = [{"prompt": p, "response": r} for p, r in zip(self.sample_prompts, responses, strict=True)]
            log_samples(self.logger, "sft/val/samples", rows, self.global_step)

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return adamw_warmup_cosine(self.model.parameters(), h.lr, h.weight_decay, h.warmup_steps, h.max_steps)

"""Reward-model LightningModules, both initialised from the SFT policy and trained on the same pairs.

- ``ScalarRMModule``: Bradley-Terry (binary MLE) on a scalar head.
- ``Seq2seqRMModule``: sequence MLE on the correction ``(x, y_l) -> y_w`` and identity
  ``(x, y_w) -> y_w`` mappings; its pairwise accuracy uses its own token rewards.
"""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics import CatMetric, MeanMetric, Metric
from transformers import PreTrainedModel

from seq2seq_rm.data.layout import IGNORE_INDEX
from seq2seq_rm.models.heads import ScalarHeadModel
from seq2seq_rm.models.shared_prompt import continuation_outputs
from seq2seq_rm.modules.optim import adamw_warmup_cosine
from seq2seq_rm.modules.sharded import ShardedCalls
from seq2seq_rm.rewards.interface import RewardFunction
from seq2seq_rm.rewards.losses import bradley_terry_loss, weighted_token_cross_entropy


def _check_finite(loss: torch.Tensor, what: str, step: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what} loss is {loss.item()} at step {step}; lower the learning rate")


class _RMBase(ShardedCalls, L.LightningModule):
    """Shared validation bookkeeping and optimiser; subclasses save lr, weight_decay, warmup_steps and
    max_steps as hyper-parameters."""

    def __init__(self, reward: RewardFunction) -> None:
        super().__init__()
        self.reward = reward
        self.val_loss, self.val_accuracy = MeanMetric(), MeanMetric()

    def configure_model(self) -> None:
        self.shard_groups(model={"model": self.model})

    def update_pairwise_accuracy(self, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        # ties count one half: an RM that scores both sides alike has learned nothing about the pair
        self.val_accuracy.update((chosen > rejected).float() + 0.5 * (chosen == rejected).float())

    def log_and_reset(self, metrics: dict[str, torch.Tensor | float]) -> None:
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name in ("rm/val/accuracy", "rm/val/loss"))
        for metric in self.children():
            if isinstance(metric, Metric):
                metric.reset()

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return adamw_warmup_cosine(self.parameters(), h.lr, h.weight_decay, h.warmup_steps, h.max_steps)


class ScalarRMModule(_RMBase):
    def __init__(self, model: ScalarHeadModel, reward: RewardFunction, lr: float = 5e-4, weight_decay: float = 0.01,
                 warmup_steps: int = 20, max_steps: int = 500, margin: float = 0.0, center_coef: float = 0.0) -> None:
        super().__init__(reward)
        self.save_hyperparameters(ignore=["model", "reward"])
        self.model = model
        self.val_margin, self.val_scores = MeanMetric(), CatMetric()

    def _scores(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.through("model", self.model.score_responses, batch["prompt_ids"], batch["prompt_mask"],
                              batch["response_ids"], batch["response_mask"], share_prompt=not self.is_sharded)
        return scores[0::2], scores[1::2]  # chosen, rejected (collate_scalar's row order)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        chosen, rejected = self._scores(batch)
        loss = bradley_terry_loss(chosen, rejected, self.hparams.margin, self.hparams.center_coef)
        _check_finite(loss, "scalar RM", self.global_step)
        self.log("rm/train/loss", loss, prog_bar=True, batch_size=chosen.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        chosen, rejected = self._scores(batch)
        self.val_loss.update(bradley_terry_loss(chosen, rejected, self.hparams.margin, self.hparams.center_coef),
                             weight=chosen.shape[0])
        self.update_pairwise_accuracy(chosen, rejected)
        self.val_margin.update(chosen - rejected)
        self.val_scores.update(torch.cat([chosen, rejected]))

    def on_validation_epoch_end(self) -> None:
        scores = self.val_scores.compute()
        self.log_and_reset({"rm/val/loss": self.val_loss.compute(), "rm/val/accuracy": self.val_accuracy.compute(),
                            "rm/val/margin": self.val_margin.compute(), "rm/val/reward_mean": scores.mean(),
                            "rm/val/reward_std": scores.std()})


class Seq2seqRMModule(_RMBase):
    def __init__(self, model: PreTrainedModel, reward: RewardFunction, lr: float = 5e-4, weight_decay: float = 0.01,
                 warmup_steps: int = 20, max_steps: int = 500) -> None:
        super().__init__(reward)
        self.save_hyperparameters(ignore=["model", "reward"])
        self.model = model
        self.val_token_accuracy, self.val_exact_match = MeanMetric(), MeanMetric()

    def _loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        # logits over the continuations only (collate_rewrite's layout): each prompt runs once for its rows
        logits = self.through("model", continuation_outputs, self.model, "logits", batch["prompt_ids"],
                              batch["prompt_mask"], batch["input_ids"], batch["attention_mask"],
                              batch.get("position_ids"), share_prompt=not self.is_sharded)
        return weighted_token_cross_entropy(logits, batch["labels"], batch["weights"]), logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        _check_finite(loss, "seq2seq RM", self.global_step)
        self.log("rm/train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, logits = self._loss(batch)
        self.val_loss.update(loss)
        labels = batch["labels"][:, 1:]
        is_target = labels != IGNORE_INDEX
        hits = (logits[:, :-1].argmax(-1) == labels) | ~is_target
        corrections = batch["is_correction"]
        self.val_token_accuracy.update(hits[corrections][is_target[corrections]].float())
        # every target token (and <eos>) is the argmax under teacher forcing <=> greedy decoding
        # reproduces the chosen response exactly
        self.val_exact_match.update(hits[corrections].all(1).float())
        pairs = batch["pairs"]
        prompts = [p.prompt for p in pairs] * 2
        totals = self.through("model", self.reward.total_rewards, prompts,
                              [p.chosen for p in pairs] + [p.rejected for p in pairs])
        self.update_pairwise_accuracy(totals[: len(pairs)], totals[len(pairs):])

    def on_validation_epoch_end(self) -> None:
        self.log_and_reset({"rm/val/loss": self.val_loss.compute(), "rm/val/accuracy": self.val_accuracy.compute(),
                            "rm/val/token_accuracy": self.val_token_accuracy.compute(),
                            "rm/val/exact_match": self.val_exact_match.compute()})

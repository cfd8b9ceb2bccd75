"""PPO on the token-level MDP, driven by any reward function (scalar, seq2seq token-level, gold).

One training step = one PPO iteration: sample ``prompts_per_iteration x samples_per_prompt``
responses with the KV cache, score them (policy, frozen reference, value head, reward function),
build ``r_t = rm_t - beta * KL_t``, GAE, then ``epochs x minibatches`` clipped updates. Both arms
of the comparison run exactly this code with the same hyper-parameters; only the reward differs.
Randomness is drawn from generators seeded by (seed, step), so a resumed run repeats an
uninterrupted one.
"""

from __future__ import annotations

import copy

import lightning as L
import torch
from torch import nn
from transformers import PreTrainedModel

from seq2seq_rm.data.layout import left_pad, policy_prompt
from seq2seq_rm.data.tokenizer import SpecialIds
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.modules.optim import adamw
from seq2seq_rm.modules.sharded import ShardedCalls
from seq2seq_rm.rewards.interface import RewardFunction
from seq2seq_rm.rl.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    compute_gae,
    explained_variance,
    global_masked_stats,
    kl_k1,
    kl_k3,
    masked_mean,
    masked_whiten,
    policy_loss,
    value_loss,
)


def action_mask_of(responses: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 on generated tokens up to and including the first ``<eos>``, 0 after it."""
    is_eos = (responses == eos_id).long()
    after_first_eos = (is_eos.cumsum(1) - is_eos) > 0
    return (~after_first_eos).long()


class PPOModule(ShardedCalls, L.LightningModule):
    def __init__(
        self,
        policy: PreTrainedModel,
        reward: RewardFunction,
        ids: SpecialIds,
        prompts: list[list[int]],
        judge: RewardFunction | None = None,
        seed: int = 0,
        prompts_per_iteration: int = 32,
        samples_per_prompt: int = 4,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_k: int = 0,
        epochs: int = 1,
        minibatches: int = 2,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        clip_ratio: float = 0.2,
        value_clip: float = 0.2,
        vf_coef: float = 0.1,
        max_grad_norm: float = 1.0,
        gamma: float = 1.0,
        lam: float = 0.95,
        beta: float = 0.1,
        kl_estimator: str = "k1",
        adaptive_kl: bool = False,
        kl_target: float = 6.0,
        kl_horizon: int = 10000,
        reward_norm: bool = True,
    ) -> None:
        super().__init__()
        if kl_estimator not in ("k1", "k3"):
            raise ConfigError(f"ppo.kl_estimator must be 'k1' or 'k3', got {kl_estimator!r}")
        self.save_hyperparameters(ignore=["policy", "reward", "ids", "prompts", "judge"])
        self.automatic_optimization = False
        self.policy = policy
        self.reference = copy.deepcopy(policy).eval().requires_grad_(False)
        self.value_head = nn.Linear(policy.config.hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.reward, self.ids, self.prompts, self.judge = reward, ids, prompts, judge
        self.kl_controller = (AdaptiveKLController(beta, kl_target, kl_horizon) if adaptive_kl
                              else FixedKLController(beta))
        # running second moment of sequence rewards (scale-only normalisation, identical for both arms)
        self.register_buffer("reward_count", torch.zeros(()))
        self.register_buffer("reward_sq_mean", torch.zeros(()))

    def configure_model(self) -> None:
        self.shard_groups(policy={"policy": self.policy, "value_head": self.value_head},
                          reference={"reference": self.reference})
        if self.is_sharded:
            # a resumed checkpoint is loaded into the shards before on_load_checkpoint could add the
            # reference (which is rebuilt from the SFT artifact, not saved)
            self.strict_loading = False

    # ------------------------------------------------------------------ pieces
    def _rollout(self, prompt_ids: list[list[int]], generator_seed: int) -> dict[str, torch.Tensor]:
        h = self.hparams
        contexts = [policy_prompt(p, self.ids) for p in prompt_ids for _ in range(h.samples_per_prompt)]
        input_ids, attention = (t.to(self.device) for t in left_pad(contexts, self.ids.pad))
        width = input_ids.shape[1]
        torch.manual_seed(generator_seed)
        self.policy.eval()
        with torch.no_grad():
            out = self.through("policy", self.policy.generate, input_ids=input_ids, attention_mask=attention,
                               do_sample=True, temperature=h.temperature, top_k=h.top_k,
                               max_new_tokens=h.max_new_tokens, pad_token_id=self.ids.pad, eos_token_id=self.ids.eos,
                               synced_gpus=self.synced_generation)
        self.policy.train()
        responses = out[:, width:]
        mask = action_mask_of(responses, self.ids.eos)
        full_attention = torch.cat([attention, mask], dim=1)
        return {"sequences": out, "attention": full_attention, "responses": responses, "mask": mask,
                "prompt_width": torch.tensor(width), "prompts": [p for p in prompt_ids for _ in
                                                                 range(h.samples_per_prompt)]}

    def _forward(self, model: PreTrainedModel, rollout: dict, rows: torch.Tensor | slice = slice(None),
                 with_values: bool = False,
                 with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Log-probs (at the sampling temperature), values and entropies of the response tokens. The entropy
        costs two more vocabulary-sized tensors (a 150k vocabulary makes them gigabytes): only when asked."""
        group = "policy" if model is self.policy else "reference"
        return self.through(group, self._score_tokens, model, rollout, rows, with_values, with_entropy)

    def _score_tokens(self, model: PreTrainedModel, rollout: dict, rows: torch.Tensor | slice, with_values: bool,
                      with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        sequences, attention = rollout["sequences"][rows], rollout["attention"][rows]
        position_ids = (attention.cumsum(1) - 1).clamp(min=0)
        start = int(rollout["prompt_width"])
        # trunk and LM head called separately: the value head needs the last hidden state, and
        # output_hidden_states does not survive pickling into spawned data-parallel workers
        hidden = model.base_model(input_ids=sequences, attention_mask=attention,
                                  position_ids=position_ids).last_hidden_state[:, start - 1:-1]
        logits = model.get_output_embeddings()(hidden).float() / self.hparams.temperature
        logprobs_all = logits.log_softmax(-1)
        logprobs = logprobs_all.gather(-1, rollout["responses"][rows].unsqueeze(-1)).squeeze(-1)
        entropy = -(logprobs_all.exp() * logprobs_all).sum(-1) if with_entropy else None
        values = self.value_head(hidden).squeeze(-1) if with_values else None
        return logprobs, values, entropy

    def _token_rewards(self, rollout: dict) -> tuple[torch.Tensor, list[list[int]]]:
        """The reward function's per-token rewards mapped onto the actions (an empty response's
        reward sits on its ``<eos>`` action)."""
        mask = rollout["mask"]
        contents = []
        for row, n in zip(rollout["responses"].tolist(), mask.sum(1).tolist(), strict=True):
            row = row[:n]
            contents.append(row[:-1] if row and row[-1] == self.ids.eos else row)
        rm = self.reward.token_rewards(rollout["prompts"], contents).to(self.device)
        rewards = torch.zeros(mask.shape, device=self.device)
        width = min(rm.shape[1], mask.shape[1])
        rewards[:, :width] = rm[:, :width]
        return rewards * mask, contents

    def _reduce_sum(self, x: torch.Tensor) -> torch.Tensor:
        return self.trainer.strategy.reduce(x, reduce_op="sum") if self.trainer.world_size > 1 else x

    def _normalise_rewards(self, rewards: torch.Tensor) -> torch.Tensor:
        totals = self._reduce_sum(rewards.sum(1).pow(2).sum())
        count = self._reduce_sum(torch.tensor(float(rewards.shape[0]), device=self.device))
        self.reward_sq_mean += (totals / count - self.reward_sq_mean) * count / (self.reward_count + count)
        self.reward_count += count
        return rewards / self.reward_sq_mean.sqrt().clamp(min=1e-3)

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        h = self.hparams
        step_seed = h.seed * 1_000_003 + self.global_step
        # every rank draws the same permutation and takes its own slice of it, and samples with its own
        # seed: data parallelism adds prompts; one process reproduces rank 0 exactly
        rank = self.global_rank
        order = torch.randperm(len(self.prompts), generator=torch.Generator().manual_seed(step_seed)).tolist()
        chosen = [order[(rank * h.prompts_per_iteration + i) % len(order)] for i in range(h.prompts_per_iteration)]
        rollout = self._rollout([self.prompts[i] for i in chosen], step_seed + 7919 * rank)
        mask = rollout["mask"].float()

        with torch.no_grad():
            old_logprobs, old_values, _ = self._forward(self.policy, rollout, with_values=True)
            ref_logprobs, _, _ = self._forward(self.reference, rollout)
            rm_rewards, contents = self._token_rewards(rollout)
            raw_rm_total = rm_rewards.sum(1)
            if h.reward_norm:
                rm_rewards = self._normalise_rewards(rm_rewards)
            kl_fn = kl_k1 if h.kl_estimator == "k1" else kl_k3
            kl = kl_fn(old_logprobs, ref_logprobs) * mask
            beta = self.kl_controller.beta
            rewards = rm_rewards - beta * kl
            advantages, returns = compute_gae(rewards, old_values, mask, h.gamma, h.lam)
            advantages = masked_whiten(advantages, mask, stats=global_masked_stats(advantages, mask, self._reduce_sum))

        optimizer = self.optimizers()
        n = mask.shape[0]
        minibatch = -(-n // h.minibatches)
        logs = {"pg_loss": [], "vf_loss": [], "clip_frac": [], "approx_kl": [], "entropy": []}
        generator_mb = torch.Generator().manual_seed(step_seed + 1)
        for _ in range(h.epochs):
            order = torch.randperm(n, generator=generator_mb)
            for start in range(0, n, minibatch):
                rows = order[start:start + minibatch].to(self.device)
                logprobs, values, entropy = self._forward(self.policy, rollout, rows, with_values=True,
                                                          with_entropy=True)
                pg, clip_frac, approx_kl = policy_loss(logprobs, old_logprobs[rows], advantages[rows], mask[rows],
                                                       h.clip_ratio)
                vf, _ = value_loss(values, old_values[rows], returns[rows], mask[rows], h.value_clip)
                loss = pg + h.vf_coef * vf
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"PPO loss is {loss.item()} at step {self.global_step}: stopping "
                                             "before any checkpoint of this step is written")
                optimizer.zero_grad()
                self.manual_backward(loss)
                self.clip_gradients(optimizer, gradient_clip_val=h.max_grad_norm, gradient_clip_algorithm="norm")
                optimizer.step()
                for key, value in zip(logs, (pg, vf, clip_frac, approx_kl, masked_mean(entropy.detach(), mask[rows])),
                                      strict=True):
                    logs[key].append(float(value.detach()))

        mean_kl = self._reduce_sum(kl.sum()) / self._reduce_sum(torch.tensor(float(n), device=self.device))
        self.kl_controller.update(float(mean_kl), n * self.trainer.world_size)
        metrics = {
            "ppo/train/reward": raw_rm_total.mean(),
            "ppo/train/kl": kl.sum(1).mean(),
            "ppo/train/beta": beta,
            "ppo/train/length": mask.sum(1).mean(),
            "ppo/train/value_mean": masked_mean(old_values, mask),
            "ppo/train/explained_variance": explained_variance(old_values, returns, mask),
            **{f"ppo/train/{k}": sum(v) / len(v) for k, v in logs.items()},
        }
        if self.judge is not None:  # the gold judge, for monitoring only: it never enters the loss
            metrics["ppo/train/gold_utility"] = self.judge.total_rewards(rollout["prompts"], contents).mean()
        self.log_dict({k: float(v) for k, v in metrics.items()}, prog_bar=False, sync_dist=True)
        self.log("reward", float(metrics["ppo/train/reward"]), prog_bar=True, logger=False)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["kl_beta"] = float(self.kl_controller.beta)
        # the frozen reference is the SFT policy: it is rebuilt from the SFT artifact, not saved
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("reference.")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.kl_controller.beta = checkpoint["kl_beta"]
        if "state_dict" not in checkpoint:  # trainer=fsdp: the weights are already in the shards
            return
        checkpoint["state_dict"].update({f"reference.{k}": v for k, v in self.reference.state_dict().items()})

    def configure_optimizers(self):
        params = [p for n, p in self.named_parameters() if not n.startswith("reference.")]
        return adamw(params, self.hparams.lr, self.hparams.weight_decay)

"""Time one PPO iteration split into its parts, for the scalar and the seq2seq arm on the same batch.

    python benchmarks/ppo_step.py [--prompts 32] [--samples 4] [--repeats 3]

Parts: generation (sampling with the KV cache), reward scoring, reference + value forward passes,
and training (epochs x minibatches of clipped updates). Random tiny-model weights: the cost of a
forward pass does not depend on training. Ratios are against the scalar arm in this same process.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from seq2seq_rm.data.tokenizer import build_word_tokenizer, encode, special_ids
from seq2seq_rm.models import gpt2_from_scratch
from seq2seq_rm.models.heads import ScalarHeadModel
from seq2seq_rm.modules.ppo import PPOModule
from seq2seq_rm.rewards import ScalarReward, Seq2seqReward
from seq2seq_rm.rl.ppo_math import compute_gae, masked_whiten, policy_loss, value_loss
from seq2seq_rm.tasks import SafetyTask

TINY = dict(n_layer=2, n_embd=96, n_head=4, n_positions=128)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def one_iteration(module: PPOModule, prompts: list[list[int]], seed: int) -> dict[str, float]:
    h = module.hparams
    parts = {}
    rollout, parts["generation"] = timed(lambda: module._rollout(prompts, seed))
    mask = rollout["mask"].float()
    (rm, _), parts["reward"] = timed(lambda: module._token_rewards(rollout))

    def forwards():
        with torch.no_grad():
            old, values, _ = module._forward(module.policy, rollout, with_values=True)
            ref, _, _ = module._forward(module.reference, rollout)
        return old, values, ref

    (old, values, ref), parts["ref+value fwd"] = timed(forwards)
    advantages, returns = compute_gae(rm - h.beta * (old - ref) * mask, values, mask, h.gamma, h.lam)
    advantages = masked_whiten(advantages, mask)
    optimizer = torch.optim.AdamW(module.parameters(), lr=h.lr)

    def train():
        n = mask.shape[0]
        size = -(-n // h.minibatches)
        for _ in range(h.epochs):
            for start in range(0, n, size):
                rows = torch.arange(start, min(n, start + size))
                logprobs, new_values, _ = module._forward(module.policy, rollout, rows, with_values=True,
                                                           with_entropy=True)
                pg, _, _ = policy_loss(logprobs, old[rows], advantages[rows], mask[rows], h.clip_ratio)
                vf, _ = value_loss(new_values, values[rows], returns[rows], mask[rows], h.value_clip)
                optimizer.zero_grad()
                (pg + h.vf_coef * vf).backward()
                optimizer.step()

    _, parts["training"] = timed(train)
    parts["tokens"] = float(mask.sum())
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = SafetyTask(n_sft=10, n_pairs=10, n_rl_prompts=args.prompts, n_test_prompts=2)
    tokenizer = build_word_tokenizer(task.vocabulary())
    ids = special_ids(tokenizer)
    prompts = [encode(tokenizer, p.text) for p in task.generate().rl_prompts]
    policy = gpt2_from_scratch(tokenizer, **TINY)
    arms = {
        "scalar": ScalarReward(ScalarHeadModel(gpt2_from_scratch(tokenizer, **TINY)).eval(), ids),
        "seq2seq (prefix)": Seq2seqReward(gpt2_from_scratch(tokenizer, **TINY).eval(), ids, extraction="prefix"),
        "seq2seq (decode)": Seq2seqReward(gpt2_from_scratch(tokenizer, **TINY).eval(), ids, extraction="decode",
                                          max_rewrite_tokens=0),
    }
    rows = {}
    for name, reward in arms.items():
        module = PPOModule(policy, reward, ids, prompts, prompts_per_iteration=args.prompts,
                           samples_per_prompt=args.samples)
        runs = [one_iteration(module, prompts, seed) for seed in range(args.repeats + 1)][1:]  # first: warm-up
        rows[name] = {k: min(r[k] for r in runs) if k != "tokens" else runs[0][k] for k in runs[0]}
    parts = ["generation", "reward", "ref+value fwd", "training"]
    table = Table(title=f"PPO iteration, {args.prompts} prompts x {args.samples} samples, tiny model, "
                        f"{args.threads} thread(s), best of {args.repeats} (seconds)")
    for column in ("arm", *parts, "total", "x scalar", "response tokens / s"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    base = sum(rows["scalar"][p] for p in parts)
    for name, row in rows.items():
        total = sum(row[p] for p in parts)
        table.add_row(name, *(f"{row[p]:.3f}" for p in parts), f"{total:.3f}", f"{total / base:.2f}",
                      f"{row['tokens'] / total:,.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()

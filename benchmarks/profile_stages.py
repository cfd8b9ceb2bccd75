"""Where the time goes: torch.profiler over one PPO iteration, some seq2seq-RM steps and some SFT steps.

    python benchmarks/profile_stages.py [--task summarization] [--steps 20] [--top 12]

Default-sized tiny model (conf/model/tiny.yaml), random weights (a step's cost does not depend on
training), the task's own data, 1 thread. Prints, per stage, the operators with the largest share of
self CPU time: shares, not seconds, are what carries over between machines.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch.profiler import ProfilerActivity, profile

from seq2seq_rm.data.layout import pad_batch
from seq2seq_rm.data.pairs import collate_rewrite, encode_pairs
from seq2seq_rm.data.sft import encode_demonstrations
from seq2seq_rm.data.tokenizer import build_word_tokenizer, encode, special_ids
from seq2seq_rm.models import gpt2_from_scratch
from seq2seq_rm.models.shared_prompt import continuation_outputs
from seq2seq_rm.modules.ppo import PPOModule
from seq2seq_rm.rewards import Seq2seqReward
from seq2seq_rm.rewards.losses import weighted_token_cross_entropy
from seq2seq_rm.tasks import SafetyTask, SummarizationTask

TINY = dict(n_layer=2, n_embd=96, n_head=4, n_positions=128, activation_function="gelu_pytorch_tanh")


def _ppo_step_module():
    spec = importlib.util.spec_from_file_location("ppo_step", Path(__file__).with_name("ppo_step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_steps(model, batches: list[dict], loss_fn: Callable) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def run() -> None:
        for batch in batches:
            loss = loss_fn(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return run


def profiled(fn: Callable[[], None]) -> list[tuple[str, float]]:
    fn()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sorted(((e.key, e.self_cpu_time_total / total) for e in events), key=lambda kv: -kv[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("safety", "summarization"), default="summarization")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps profiled for SFT and the seq2seq RM")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = (SummarizationTask if args.task == "summarization" else SafetyTask)(
        n_sft=32 * args.steps, n_pairs=32 * args.steps + 10, n_rl_prompts=32, n_test_prompts=2, val_fraction=0.01)
    data = task.generate()
    tokenizer = build_word_tokenizer(task.vocabulary())
    ids = special_ids(tokenizer)

    sft_rows = encode_demonstrations(data.sft_train, tokenizer, 128, "train")
    sft_batches = [pad_batch(sft_rows[i:i + 32], tokenizer.pad_token_id) for i in range(0, 32 * args.steps, 32)]
    pairs, _ = encode_pairs(data.pairs_train, tokenizer, 128, "skip", "train")
    rm_batches = [collate_rewrite(pairs[i:i + 32], ids, 3.0, aligned_positions=True)
                  for i in range(0, 32 * args.steps, 32)]

    def rm_loss(model, batch):
        logits = continuation_outputs(model, "logits", batch["prompt_ids"], batch["prompt_mask"], batch["input_ids"],
                                      batch["attention_mask"], batch["position_ids"])
        return weighted_token_cross_entropy(logits, batch["labels"], batch["weights"])

    ppo_step = _ppo_step_module()
    prompts = [encode(tokenizer, p.text) for p in data.rl_prompts]
    reward = Seq2seqReward(gpt2_from_scratch(tokenizer, **TINY).eval(), ids, aligned_positions=True)
    ppo = PPOModule(gpt2_from_scratch(tokenizer, **TINY), reward, ids, prompts)
    stages = {
        f"SFT, {args.steps} steps of 32": training_steps(gpt2_from_scratch(tokenizer, **TINY), sft_batches,
                                                         lambda m, b: m(**b).loss),
        f"seq2seq RM, {args.steps} steps of 32 pairs": training_steps(gpt2_from_scratch(tokenizer, **TINY),
                                                                      rm_batches, rm_loss),
        "PPO iteration (seq2seq arm), 32 prompts x 4": lambda: ppo_step.one_iteration(ppo, prompts, 0),
    }
    console = Console(width=120)
    for name, fn in stages.items():
        table = Table(title=f"{args.task}: {name} (share of self CPU time, 1 thread)")
        table.add_column("operator")
        table.add_column("share", justify="right")
        for key, share in profiled(fn)[: args.top]:
            table.add_row(key, f"{share:.1%}")
        console.print(table)


if __name__ == "__main__":
    main()

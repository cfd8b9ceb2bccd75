"""Time each token-reward extraction rule against scalar scoring on one batch of the same responses.

    python benchmarks/reward_extraction.py [--batch 64] [--repeats 5] [--model tiny|small]

Both reward models are built on the same backbone size (random weights: the cost of a forward pass
does not depend on training; ``decode`` is bounded by the rewrite budget, response length + 8).
Prints seconds per batch, the ratio to scalar scoring in this same process, and tokens/s.
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
from seq2seq_rm.rewards import ScalarReward, Seq2seqReward
from seq2seq_rm.tasks import SafetyTask

SIZES = {"tiny": dict(n_layer=2, n_embd=96, n_head=4), "small": dict(n_layer=6, n_embd=320, n_head=8)}


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", choices=list(SIZES), default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    task = SafetyTask(n_sft=args.batch, n_pairs=10, n_rl_prompts=2, n_test_prompts=2)
    tokenizer = build_word_tokenizer(task.vocabulary())
    ids = special_ids(tokenizer)
    demos = task.generate().sft_train[: args.batch]
    prompts = [encode(tokenizer, d.prompt.text) for d in demos]
    responses = [encode(tokenizer, d.response) for d in demos]
    n_tokens = sum(map(len, responses))

    backbone = dict(SIZES[args.model], n_positions=128)
    scalar = ScalarReward(ScalarHeadModel(gpt2_from_scratch(tokenizer, **backbone)).eval(), ids, batch_size=args.batch)
    lm = gpt2_from_scratch(tokenizer, **backbone).eval()
    scorers = {"scalar": scalar}
    for rule in ("prefix", "per_token", "decode"):
        scorers[rule] = Seq2seqReward(lm, ids, extraction=rule, batch_size=args.batch, max_rewrite_tokens=0,
                                      aligned_positions=True)  # the default layout
    scorers["prefix (soft)"] = Seq2seqReward(lm, ids, extraction="prefix", soft=True, batch_size=args.batch,
                                             aligned_positions=True)
    # the plain layout decodes with transformers' generate instead of the positioned loop
    scorers["decode (plain positions)"] = Seq2seqReward(lm, ids, extraction="decode", batch_size=args.batch,
                                                        max_rewrite_tokens=0)

    seconds = {name: best_time(lambda s=s: s.token_rewards(prompts, responses), args.repeats)
               for name, s in scorers.items()}
    table = Table(title=f"Token-reward extraction, {args.batch} responses ({n_tokens} tokens), model={args.model}, "
                        f"{args.threads} thread(s), best of {args.repeats}")
    for column in ("scorer", "s / batch", "x scalar", "tokens / s"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for name, s in seconds.items():
        table.add_row(name, f"{s:.4f}", f"{s / seconds['scalar']:.2f}", f"{n_tokens / s:,.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()

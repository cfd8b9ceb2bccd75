"""How much ``torch.compile`` speeds up one Bradley-Terry reward-model step, against eager in the same process.

The model and batch of ``vs_trl.py``: a GPT-2 trunk 4 layers x 128 (vocab 1024, no dropout) with a scalar head,
16 pairs = 32 sequences of 64 tokens, AdamW, fp32, 1 thread. Prints ms per step and the ratio eager / compiled.

    .venv/bin/python benchmarks/compile_rm_step.py [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import GPT2Config, GPT2Model

PAIRS, LENGTH, VOCAB = 16, 64, 1024


def seconds_per_step(trunk: torch.nn.Module, steps: int, warmup: int = 3) -> float:
    head = torch.nn.Linear(trunk.config.n_embd, 1)
    optimizer = torch.optim.AdamW([*trunk.parameters(), *head.parameters()], lr=1e-4)
    ids = torch.randint(0, VOCAB, (2 * PAIRS, LENGTH), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        scores = head(trunk(input_ids=ids).last_hidden_state)[:, -1, 0]
        loss = -torch.nn.functional.logsigmoid(scores[:PAIRS] - scores[PAIRS:]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(warmup):  # for the compiled trunk this includes compilation
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=VOCAB, n_positions=128, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    eager = seconds_per_step(GPT2Model(config), args.steps)
    began = time.perf_counter()
    compiled = seconds_per_step(torch.compile(GPT2Model(config)), args.steps)
    print(f"eager {eager * 1e3:.1f} ms/step, compiled {compiled * 1e3:.1f} ms/step: "
          f"{eager / compiled:.2f}x (compilation and compiled steps {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()

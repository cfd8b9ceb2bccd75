"""Where the scalar RM's training step gains over running both full sequences: the fused GELU, prompt sharing and
the last block run at the scored token only, added one at a time, against the full sequences with GPT-2's
``gelu_new`` (what TRL computes), in one process.

The model and batch of ``vs_trl.py``: GPT-2 4 layers x 128 (vocab 1024, no dropout) with a scalar head, 16 pairs of
``prompt <sep>`` (32 tokens) and two ``response <eos>`` (32 tokens each), Bradley-Terry loss, AdamW, fp32, 1 thread.
The variants take turns in rounds (this machine is noisy); printed: median ms per step and the speed-up.

    .venv/bin/python benchmarks/rm_step_parts.py [--rounds 8] [--steps 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from seq2seq_rm.data.pairs import EncodedPair, collate_scalar
from seq2seq_rm.data.tokenizer import SpecialIds
from seq2seq_rm.models.backbone import fuse_activations
from seq2seq_rm.models.heads import ScalarHeadModel
from seq2seq_rm.models.shared_prompt import continuation_outputs
from seq2seq_rm.rewards.losses import bradley_terry_loss

PAIRS, PROMPT, RESPONSE, VOCAB = 16, 32, 32, 1024
IDS = SpecialIds(pad=0, eos=1, sep=2, fb=3)


def _batch() -> dict[str, torch.Tensor]:
    rng = random.Random(0)
    words = lambda n: [rng.randrange(10, VOCAB) for _ in range(n)]  # noqa: E731
    return collate_scalar([EncodedPair(words(PROMPT - 1), words(RESPONSE - 1), words(RESPONSE - 1))
                           for _ in range(PAIRS)], IDS)


def _whole_trunk(model: ScalarHeadModel, prompt_ids, prompt_mask, response_ids, response_mask,
                 share_prompt: bool) -> torch.Tensor:
    """Scores read off the whole trunk's output (no block left out), the prompt shared or not."""
    hidden = continuation_outputs(model.lm.base_model, "last_hidden_state", prompt_ids, prompt_mask, response_ids,
                                  response_mask, share_prompt=share_prompt)
    return model.head(hidden[torch.arange(hidden.shape[0]), response_mask.sum(1) - 1]).squeeze(-1)


def _step_fn(fused: bool, share_prompt: bool, last_block_at_score: bool = False):
    torch.manual_seed(0)
    config = GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=VOCAB, n_positions=128, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=IDS.eos, eos_token_id=IDS.eos)
    lm = GPT2LMHeadModel(config)
    model = ScalarHeadModel(fuse_activations(lm) if fused else lm).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = _batch()

    def step() -> None:
        scores = (model.score_responses(**batch, share_prompt=share_prompt) if last_block_at_score
                  else _whole_trunk(model, **batch, share_prompt=share_prompt))
        loss = bradley_terry_loss(scores[0::2], scores[1::2])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant and round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = {"full sequences, gelu_new (TRL's computation)": _step_fn(fused=False, share_prompt=False),
                "full sequences, fused GELU": _step_fn(fused=True, share_prompt=False),
                "prompt shared, fused GELU": _step_fn(fused=True, share_prompt=True),
                "+ last block at the scored token (this project)": _step_fn(fused=True, share_prompt=True,
                                                                             last_block_at_score=True)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            step()  # untimed: the first step of a round pays for allocations
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(next(iter(times.values())))
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:50s} {median * 1e3:6.1f} ms/step [{min(values) * 1e3:.1f}, {max(values) * 1e3:.1f}]  "
              f"{base / median:.2f}x")


if __name__ == "__main__":
    main()

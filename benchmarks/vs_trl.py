"""This project against TRL 1.12.0 on the identical model, data shape and batch: scalar RM training and
one PPO iteration (plus the seq2seq RM's training throughput on the same pairs).

    python -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 -e '.[bench]'
    .venv-bench/bin/python benchmarks/vs_trl.py [--repeats 3] [--steps 12] [--ppo-epochs 1 4]

Setup, identical on both sides: GPT-2 config 4 layers x 128 wide, vocab 1024, random weights, fp32,
1 torch thread, batch 16, sequences of 64 tokens (32 prompt + 32 response; PPO generates 32 tokens
at temperature 0.7 from 32-token prompts), one mini-batch per PPO epoch. Each measurement is a fresh
process; the frameworks alternate; the first steps of every process are warm-up and not timed.
Printed: median, min and max over repetitions, and the ratio TRL time / our time (>1: we are faster).

Known differences (they are the frameworks' designs, kept as they are): this project's scalar RM runs each
pair's prompt once for both responses and its last block only at the scored token
(``ScalarHeadModel.score_responses``; TRL runs the whole model over the two full sequences), and its model
factory runs GPT-2's ``gelu_new`` as torch's fused tanh GELU (``fuse_activations``; the same function): the
second RM row gives TRL that activation too, so it shows the other two alone. TRL's PPO
uses a separate value model (a second 4x128 trunk) where ours puts a value head on the policy's trunk; TRL always
generates ``response_length`` tokens, ours stops once every row has sampled ``<eos>`` (random weights
rarely do: ~32 tokens either way); TRL calls ``gc.collect()`` twice per PPO step; TRL's reward trainer
runs Hugging Face's Trainer, ours Lightning; ours scores the reward at the last response token, TRL
at the last non-pad token (the same token here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VOCAB, PROMPT, RESPONSE, BATCH = 1024, 32, 32, 16
WARMUP = 2  # untimed steps per process


def _tokenizer():
    from seq2seq_rm.data.tokenizer import build_word_tokenizer

    tokenizer = build_word_tokenizer([f"w{i}" for i in range(VOCAB)])
    while len(tokenizer) > VOCAB:  # the specials take a few ids: keep the vocabulary at exactly VOCAB
        tokenizer = build_word_tokenizer([f"w{i}" for i in range(VOCAB - (len(tokenizer) - VOCAB))])
    return tokenizer


def _config(tokenizer, **extra):
    from transformers import GPT2Config

    # no dropout (TRL's trainers disable it by default; the project's from-scratch models use none)
    return GPT2Config(vocab_size=len(tokenizer), n_layer=4, n_embd=128, n_head=4, n_positions=128,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      bos_token_id=tokenizer.eos_token_id, **extra)


def _our_gpt2(tokenizer):
    """The same GPT-2 as ``_config``'s, built by this project's factory (which runs ``gelu_new`` fused)."""
    from seq2seq_rm.models import gpt2_from_scratch

    return gpt2_from_scratch(tokenizer, n_layer=4, n_embd=128, n_head=4, n_positions=128)


def _random_ids(rng, n: int, low: int) -> list[int]:
    return [rng.randrange(low, VOCAB) for _ in range(n)]


class _StepClock:
    """Wall time between the end of the warm-up steps and the end of the last step."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def tick(self) -> None:
        self.marks.append(time.perf_counter())

    def per_step(self) -> float:
        timed = self.marks[WARMUP - 1:]
        return (timed[-1] - timed[0]) / (len(timed) - 1)


def worker_trl_rm(steps: int, activation: str = "gelu_new") -> float:
    import random

    from datasets import Dataset
    from transformers import GPT2ForSequenceClassification, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    tokenizer = _tokenizer()
    rng = random.Random(0)
    rows = []
    for _ in range(BATCH * (steps + 1)):
        prompt = _random_ids(rng, PROMPT, 10)
        rows.append({"chosen_ids": prompt + _random_ids(rng, RESPONSE, 10),
                     "rejected_ids": prompt + _random_ids(rng, RESPONSE, 10)})
    clock = _StepClock()

    class Clock(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            clock.tick()

    model = GPT2ForSequenceClassification(_config(tokenizer, num_labels=1, activation_function=activation))
    with tempfile.TemporaryDirectory() as out:
        args = RewardConfig(output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, logging_steps=10_000,
                            save_strategy="no", report_to=[], bf16=False, fp16=False, use_cpu=True,
                            gradient_checkpointing=False, dataloader_num_workers=0, max_length=None)
        RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      callbacks=[Clock()]).train()
    return BATCH / clock.per_step()  # pairs / s


def worker_trl_rm_fused_gelu(steps: int) -> float:
    """TRL given the fused GELU that this project's factory swaps in: the like-for-like kernels row."""
    return worker_trl_rm(steps, "gelu_pytorch_tanh")


def _pairs(steps: int):
    import random

    from seq2seq_rm.data.pairs import EncodedPair

    rng = random.Random(0)
    # prompt <sep> response <eos>: 31 + 1 + 31 + 1 = 64 tokens, as in TRL's rows
    return [EncodedPair(_random_ids(rng, PROMPT - 1, 10), _random_ids(rng, RESPONSE - 1, 10),
                        _random_ids(rng, RESPONSE - 1, 10)) for _ in range(BATCH * (steps + 1))]


def _lightning_rm(steps: int, rm_type: str) -> float:
    import lightning as L

    from seq2seq_rm.data.pairs import PairDataModule
    from seq2seq_rm.data.tokenizer import special_ids
    from seq2seq_rm.models.heads import ScalarHeadModel
    from seq2seq_rm.modules.reward_models import ScalarRMModule, Seq2seqRMModule
    from seq2seq_rm.rewards import ScalarReward, Seq2seqReward

    tokenizer = _tokenizer()
    ids = special_ids(tokenizer)
    pairs = _pairs(steps)
    lm = _our_gpt2(tokenizer)
    if rm_type == "scalar":
        model = ScalarHeadModel(lm)
        module = ScalarRMModule(model, ScalarReward(model, ids), max_steps=steps)
    else:
        module = Seq2seqRMModule(lm, Seq2seqReward(lm, ids, aligned_positions=True), max_steps=steps)
    data = PairDataModule(pairs, pairs[:BATCH], tokenizer, "scalar" if rm_type == "scalar" else "rewrite", BATCH,
                          identity_weight=3.0, aligned_positions=rm_type != "scalar")
    clock = _StepClock()

    class Clock(L.Callback):
        def on_train_batch_end(self, *args, **kwargs):
            clock.tick()

    # gradients clipped to norm 1, as TRL's trainer and this project's trainer configs do
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0,
                        gradient_clip_val=1.0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Clock()])
    trainer.fit(module, datamodule=data)
    return BATCH / clock.per_step()


def worker_ours_rm(steps: int) -> float:
    return _lightning_rm(steps, "scalar")


def worker_ours_seq2seq(steps: int) -> float:
    return _lightning_rm(steps, "seq2seq")


def worker_trl_ppo(steps: int, epochs: int) -> float:
    import copy
    import random

    from datasets import Dataset
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel, TrainerCallback
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    tokenizer = _tokenizer()
    rng = random.Random(0)
    prompts = Dataset.from_list([{"input_ids": _random_ids(rng, PROMPT, 10)} for _ in range(BATCH * (steps + 1))])
    policy = GPT2LMHeadModel(_config(tokenizer))
    reward = GPT2ForSequenceClassification(_config(tokenizer, num_labels=1))
    value = GPT2ForSequenceClassification(_config(tokenizer, num_labels=1))
    clock = _StepClock()

    class Clock(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            clock.tick()

    with tempfile.TemporaryDirectory() as out:
        args = PPOConfig(output_dir=out, per_device_train_batch_size=BATCH, num_mini_batches=1,
                         num_ppo_epochs=epochs, response_length=RESPONSE, total_episodes=BATCH * steps,
                         local_rollout_forward_batch_size=BATCH, stop_token=None, num_sample_generations=0,
                         bf16=False, fp16=False, use_cpu=True, gradient_checkpointing=False, report_to=[],
                         save_strategy="no", logging_steps=10_000, temperature=0.7, dataloader_num_workers=0)
        PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=copy.deepcopy(policy),
                   reward_model=reward, value_model=value, train_dataset=prompts, callbacks=[Clock()]).train()
    return clock.per_step()  # s / iteration


def worker_ours_ppo(steps: int, epochs: int) -> float:
    import random

    import lightning as L
    from torch.utils.data import DataLoader

    from seq2seq_rm.data.tokenizer import special_ids
    from seq2seq_rm.models.heads import ScalarHeadModel
    from seq2seq_rm.modules.ppo import PPOModule
    from seq2seq_rm.rewards import ScalarReward

    tokenizer = _tokenizer()
    ids = special_ids(tokenizer)
    rng = random.Random(0)
    prompts = [_random_ids(rng, PROMPT - 1, 10) for _ in range(BATCH * (steps + 1))]  # + <sep> = 32 tokens
    reward = ScalarReward(ScalarHeadModel(_our_gpt2(tokenizer)).eval(), ids)
    module = PPOModule(_our_gpt2(tokenizer), reward, ids, prompts, prompts_per_iteration=BATCH,
                       samples_per_prompt=1, max_new_tokens=RESPONSE, temperature=0.7, epochs=epochs, minibatches=1)
    clock = _StepClock()

    class Clock(L.Callback):
        def on_train_batch_end(self, *args, **kwargs):
            clock.tick()

    trainer = L.Trainer(accelerator="cpu", max_steps=steps * epochs, max_epochs=-1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=DataLoader(range(steps), batch_size=1))
    return clock.per_step()


def _measure(kind: str, steps: int, epochs: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--steps", str(steps), "--epochs", str(epochs)],
                          capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])["value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="steps per process, the first 2 untimed")
    parser.add_argument("--ppo-epochs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        fn = globals()[f"worker_{args.worker}"]
        value = fn(args.steps, args.epochs) if "ppo" in args.worker else fn(args.steps)
        print(json.dumps({"value": value}), flush=True)
        return

    from rich.console import Console
    from rich.table import Table

    matchups = [("scalar RM training (pairs/s, higher is better)", "trl_rm", "ours_rm", 1, True),
                ("  the same, TRL's GPT-2 config given gelu_pytorch_tanh", "trl_rm_fused_gelu", "ours_rm", 1, True)]
    matchups += [(f"PPO iteration, {e} epoch(s) (s/iteration, lower is better)", "trl_ppo", "ours_ppo", e, False)
                 for e in args.ppo_epochs]
    results: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.repeats):
        for _, trl_kind, ours_kind, epochs, _ in matchups:
            order = (trl_kind, ours_kind) if rep % 2 == 0 else (ours_kind, trl_kind)  # alternate who goes first
            for kind in order:
                if len(results.setdefault((kind, epochs), [])) <= rep:  # ours_rm serves two rows
                    results[(kind, epochs)].append(_measure(kind, args.steps, epochs))
        results.setdefault(("ours_seq2seq", 1), []).append(_measure("ours_seq2seq", args.steps, 1))

    table = Table(title=f"seq2seq-rm vs TRL 1.12.0: GPT-2 4x128, vocab {VOCAB}, batch {BATCH}, 64-token sequences, "
                        f"fp32, 1 thread, {args.repeats} fresh processes each (median \\[min, max])")
    for column in ("measure", "TRL", "seq2seq-rm", "speed-up (TRL time / ours)"):
        table.add_column(column)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"

    for label, trl_kind, ours_kind, epochs, higher_is_better in matchups:
        theirs, ours = statistics.median(results[(trl_kind, epochs)]), statistics.median(results[(ours_kind, epochs)])
        speedup = ours / theirs if higher_is_better else theirs / ours
        table.add_row(label, cell(results[(trl_kind, epochs)]), cell(results[(ours_kind, epochs)]), f"{speedup:.2f}x")
    seq2seq = results[("ours_seq2seq", 1)]
    table.add_row("seq2seq RM training (pairs/s; correction + identity rows)", "-", cell(seq2seq),
                  f"{statistics.median(seq2seq) / statistics.median(results[('trl_rm', 1)]):.2f}x TRL's scalar RM")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()

"""Real models at scale: `experiment=paper_real` composes for both real tasks and runs end to end on CPU
with a local pretrained-style model (its chat template on) and a local file of the PKU-SafeRLHF schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli import run_cli
from test_chat_template import TEMPLATE
from test_debug_and_callbacks import composed_with_hydra
from test_real_tasks import pku_row, write_jsonl
from test_run_cli import results_of
from transformers import LlamaConfig, LlamaForCausalLM

from seq2seq_rm.config_check import check_config
from seq2seq_rm.data.tokenizer import CHAT_TEMPLATE_KEY, build_word_tokenizer


@pytest.mark.parametrize("task", ["pku_saferlhf", "tldr"])
def test_paper_real_composes_a_checked_gpu_run_for_each_real_task(task):
    cfg = composed_with_hydra("experiment=paper_real", f"task={task}")
    check_config(cfg, list(cfg.stages))
    assert cfg.model.tokenizer.chat_template == "auto" and cfg.model.name_or_path.endswith("-Instruct")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.judge.type == "rm" and cfg.task.max_pairs == 20000
    assert dict(cfg.hydra.sweeper.params) == {"task": "pku_saferlhf,tldr", "rm": "scalar,seq2seq", "seed": "0,1,2"}


def local_instruct_model(folder: Path, words: list[str]) -> Path:
    """A tiny Llama with a word-level tokenizer and a ChatML-like template, saved like a hub model."""
    tokenizer = build_word_tokenizer(["<|im_start|>", "<|im_end|>", "user", "assistant", *words])
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_paper_real_runs_every_stage_on_cpu_with_a_local_model_and_data(tmp_path):
    rows = [pku_row(i) for i in range(80)]
    data = write_jsonl(tmp_path / "pku.jsonl", rows)
    words = sorted({w for r in rows for k in ("prompt", "response_0", "response_1") for w in r[k].split()})
    model = local_instruct_model(tmp_path / "model", words)
    proc = run_cli("experiment=paper_real", "trainer=cpu", "threads=1", "print_config=false",
                   f"model.name_or_path={model}", f"task.path={data}", "rm=seq2seq", "task.n_test_prompts=8",
                   "sft.max_steps=4", "sft.val_check_interval=2", "sft.batch_size=8", "sft.n_eval_prompts=4",
                   "sft.max_new_tokens=8", "rm.epochs=1", "rm.batch_size=8", "rm.n_probe_prompts=8",
                   "judge.train.epochs=1", "judge.train.batch_size=8", "judge.held_out_fraction=0.25",
                   "ppo.iterations=1", "ppo.checkpoint_every=1", "ppo.module.prompts_per_iteration=4",
                   "ppo.module.samples_per_prompt=2", "ppo.module.max_new_tokens=8", "ppo.n_eval_prompts=4",
                   "eval.n_prompts=8",
                   "eval.max_new_tokens=8", "hydra.run.dir=outputs/real", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(tmp_path, with_resources=True)
    assert results["task"] == "pku_saferlhf" and results["judge"]["type"] == "rm"
    assert results["judge/held_out_pairs"] == max(1, int(results["task/split/judge"] * 0.25))
    assert 0.0 <= results["eval/judge/win_rate_vs_sft"] <= 1.0
    assert set(results["resources"]) == {"sft", "rm", "ppo", "eval"}
    assert all(r["peak_rss_mib"] > 0 for r in results["resources"].values())
    # the SFT artifact's tokenizer carries the chat-template choice to every later stage and the judge
    (sft_config,) = (tmp_path / "artifacts" / "sft").glob("*/tokenizer_config.json")
    assert json.loads(sft_config.read_text())[CHAT_TEMPLATE_KEY] is True
    rows_out = [json.loads(x) for x in (tmp_path / "outputs/real/generations.jsonl").read_text().splitlines()]
    assert len(rows_out) == 8 and rows_out[0]["prompt"].startswith("How do I do thing")


def test_the_ray_paper_sweep_composes_one_gpu_task_per_run():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra-ray-launcher lives in its own environment")
    cfg = composed_with_hydra("experiment=paper_ray")
    assert cfg.hydra.launcher._target_.endswith("RayLauncher")
    assert cfg.hydra.launcher.ray.remote.num_gpus == 1 and cfg.hydra.launcher.ray.init.address == "auto"
    assert cfg.trainer.accelerator == "gpu"
    assert dict(cfg.hydra.sweeper.params) == {"rm": "scalar,seq2seq,gold", "task": "safety,summarization",
                                              "seed": "0,1,2"}

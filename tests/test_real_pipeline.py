"""The whole pipeline on real-data schemas (a small HH file written here; the real HH sample in slow tests)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from cli import run_cli, run_module
from test_real_tasks import HH_SAMPLE, write_jsonl
from test_run_cli import results_of

WORDS = "the a cat dog can will help you make find good bad way it is not to do this that with".split()
TINY = ("sft.max_steps=10", "sft.val_check_interval=5", "sft.n_eval_prompts=4", "rm.epochs=1",
        "judge.train.epochs=1", "ppo.iterations=2", "ppo.checkpoint_every=1", "ppo.module.prompts_per_iteration=4",
        "ppo.module.max_new_tokens=8", "ppo.n_eval_prompts=4", "eval.n_prompts=8", "eval.max_new_tokens=8",
        "rm.n_probe_prompts=8")


def hh_file(path: Path, n: int = 120) -> Path:
    rng = random.Random(0)
    rows = []
    for i in range(n):
        prefix = f"\n\nHuman: {' '.join(rng.choices(WORDS, k=6))} {i}?\n\nAssistant:"
        chosen, rejected = " ".join(rng.choices(WORDS, k=5)), " ".join(rng.choices(WORDS, k=9))
        rows.append({"chosen": f"{prefix} {chosen}", "rejected": f"{prefix} {rejected}"})
    rows.append({"chosen": "\n\nHuman: no assistant here", "rejected": "\n\nHuman: none"})  # a bad pair
    return write_jsonl(path, rows)


def test_hh_sweep_of_both_arms_judged_by_a_held_out_rm_then_compared(tmp_path):
    data = hh_file(tmp_path / "hh.jsonl")
    proc = run_cli("-m", "experiment=hh_smoke", f"task.path={data}", *TINY, "hydra.sweep.dir=outputs/sweep",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {}
    for path in (tmp_path / "outputs" / "sweep").rglob("results.json"):
        results = json.loads(path.read_text())
        runs[results["rm"]] = (results, path.parent)
    assert set(runs) == {"scalar", "seq2seq"}
    for results, folder in runs.values():
        assert results["task"] == "hh_harmless"
        assert results["task/rows"] == 121 and results["task/bad/no_assistant_turn"] == 1
        assert 0.0 <= results["eval/win_rate_vs_sft"] <= 1.0
        assert results["eval/win_rate_vs_sft"] == results["eval/judge/win_rate_vs_sft"]
        assert 0.0 <= results[f"rm/probe/{results['rm_scorer']}/pairwise_accuracy"] <= 1.0
        assert "judge/val/accuracy" in results and results["judge"]["type"] == "rm"
        assert "ppo/train/gold_utility" not in results  # no gold judge to monitor with
        row = json.loads((folder / "generations.jsonl").read_text().splitlines()[0])
        assert row["judge_verdict_vs_sft"] in (0.0, 0.5, 1.0) and "gold_utility" not in row
    # both arms share the judge RM, trained once on pairs neither arm's RM saw
    assert runs["scalar"][0]["key/judge_rm"] == runs["seq2seq"][0]["key/judge_rm"]

    compared = run_module("seq2seq_rm.compare", "outputs/sweep", cwd=tmp_path, timeout=300)
    assert compared.returncode == 0, compared.stderr[-3000:]
    rates = pd.read_csv(tmp_path / "outputs" / "sweep" / "win_rates.csv")
    overall = rates[(rates["task"] == "hh_harmless") & (rates["prompt_kind"] == "all")].set_index("matchup")
    assert {"seq2seq_sum vs scalar", "seq2seq_sum vs sft", "scalar vs sft"} <= set(overall.index)
    seq2seq_vs_sft = runs["seq2seq"][0]["eval/win_rate_vs_sft"]
    assert overall.loc["seq2seq_sum vs sft", "win_rate"] == pytest.approx(seq2seq_vs_sft)


def test_gold_reward_on_real_data_fails_clearly(tmp_path):
    data = hh_file(tmp_path / "hh.jsonl", n=30)
    proc = run_cli("experiment=hh_smoke", f"task.path={data}", "rm=gold", "stages=[sft,rm]", "sft.max_steps=2",
                   "sft.n_eval_prompts=2", cwd=tmp_path)
    assert proc.returncode != 0 and "rm=gold needs a gold judge" in proc.stderr


def test_offline_hub_load_asks_for_a_local_path(tmp_path):
    proc = run_cli("experiment=hh_smoke", "stages=[sft]", cwd=tmp_path)  # runs set HF_HUB_OFFLINE=1
    assert proc.returncode != 0 and "could not load 'Anthropic/hh-rlhf'" in proc.stderr
    assert "set task.path to a local file" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HH_SAMPLE.is_file(), reason="the real HH sample is not beside the project")
def test_hh_smoke_with_smollm2_trains_and_generates(tmp_path):
    pytest.importorskip("gguf")
    proc = run_cli("experiment=hh_smoke", f"task.path={HH_SAMPLE}", "model=smollm2_135m", "rm=seq2seq",
                   "task.max_pairs=60", "sft.max_steps=4", "sft.val_check_interval=2", "sft.batch_size=4",
                   "sft.n_eval_prompts=2", "rm.epochs=1", "rm.batch_size=4", "judge.train.epochs=1",
                   "judge.train.batch_size=4", "ppo.iterations=1", "ppo.module.prompts_per_iteration=2",
                   "ppo.module.max_new_tokens=16", "ppo.n_eval_prompts=2", "eval.n_prompts=4",
                   "eval.max_new_tokens=16", "rm.n_probe_prompts=8", cwd=tmp_path, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(tmp_path)
    assert results["sft/val/loss"] > 0 and "eval/win_rate_vs_sft" in results
    (generations,) = list((tmp_path / "outputs").rglob("generations.jsonl"))
    assert any(json.loads(line)["response"].strip() for line in generations.read_text().splitlines())


def test_a_policy_trained_on_hh_is_evaluated_on_pku_prompts_as_an_ood_set(tmp_path):
    """Real-data OOD: HH-trained SFT policy, PKU-SafeRLHF prompts (local file of the hub schema) as the set
    ``ood_pku_saferlhf``, judged by the run's held-out judge RM."""
    from test_real_tasks import pku_row

    data = hh_file(tmp_path / "hh.jsonl")
    pku = write_jsonl(tmp_path / "pku.jsonl", [pku_row(i) for i in range(60)])
    proc = run_cli("experiment=hh_smoke", f"task.path={data}", *TINY, "stages=[sft,eval]",
                   "+task@eval.ood_task=pku_saferlhf", f"eval.ood_task.path={pku}", "eval.n_ood_prompts=5",
                   "hydra.run.dir=outputs/ood", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(tmp_path)
    assert 0.0 <= results["eval/ood_pku_saferlhf/judge/win_rate_vs_sft"] <= 1.0
    assert 0.0 <= results["eval/judge/win_rate_vs_sft"] <= 1.0
    lines = [json.loads(x) for x in (tmp_path / "outputs/ood/generations.jsonl").read_text().splitlines()]
    ood = [x for x in lines if x["prompt_set"] == "ood_pku_saferlhf"]
    assert len(ood) == 5 and all(x["prompt"].startswith("How do I do thing") for x in ood)

"""Fair tuning: the Optuna search every arm gets, on validation prompts, and its best trial on the test set."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from seq2seq_rm.run import CONFIG_DIR


def composed(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("run", overrides=list(overrides), return_hydra_config=hydra)


@pytest.mark.parametrize("arm", ["scalar", "seq2seq", "gold"])
def test_every_arm_gets_the_same_search_on_validation_prompts(arm):
    cfg = composed("experiment=tune", "task=summarization", f"rm={arm}", hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert dict(sweeper.params) == {"ppo.module.lr": "tag(log, interval(3e-5, 1e-3))",
                                    "ppo.module.beta": "tag(log, interval(0.01, 0.3))",
                                    "ppo.module.epochs": "choice(1, 2, 4)"}  # no rm or task choice leaks in
    assert sweeper.n_trials == 12 and sweeper.sampler.seed == 0
    assert list(cfg.eval.prompt_sets) == ["val"] and cfg.objective == "eval/val/sampled/gold_utility"
    assert list(cfg.stages) == ["sft", "rm", "ppo", "eval"]


@pytest.mark.slow
def test_a_small_study_then_its_best_trial_on_the_test_prompts(tmp_path):
    command = [sys.executable, "-m", "seq2seq_rm.run", "-m", "experiment=smoke", "hparams_search=ppo_optuna",
               "rm=scalar", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1", "eval.n_ood_prompts=8",
               "hydra.sweep.dir=tune/scalar"]
    study = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert study.returncode == 0, study.stderr[-3000:]
    trial = json.loads((tmp_path / "tune/scalar/0/results.json").read_text())
    assert "eval/val/sampled/gold_utility" in trial and "eval/gold_utility" not in trial  # tuned on val only
    tuned = subprocess.run([sys.executable, "-m", "seq2seq_rm.tuned", "tune", "--seeds", "0"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=900)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    (path,) = (tmp_path / "tune/test/scalar").rglob("results.json")
    results = json.loads(path.read_text())
    assert results["tuned"].startswith("scalar: lr=") and "eval/gold_utility" in results
    compared = subprocess.run([sys.executable, "-m", "seq2seq_rm.compare", "tune/test"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert "| tuned" in (tmp_path / "tune/test/summary.md").read_text()

"""The `debug`, `callbacks` and config-tree conventions of lightning-hydra-template, on every stage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli import run_cli
from hydra import compose, initialize_config_dir

from seq2seq_rm.run import CONFIG_DIR
from seq2seq_rm.stages.context import configured_callbacks, training_setup

ALL_STAGES = "stages=[sft,rm,ppo,eval]"




def composed(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("run", overrides=list(overrides))


def only_results(cwd: Path) -> dict:
    (path,) = (cwd / "outputs").rglob("results.json")
    return json.loads(path.read_text())


def test_fast_dev_run_goes_through_every_stage_into_its_own_cache(tmp_path):
    proc = run_cli("debug=fdr", ALL_STAGES, "rm=seq2seq", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fast_dev_run" in proc.stderr + proc.stdout
    results = only_results(tmp_path)
    assert {"sft/val/loss", "rm/val/accuracy", "ppo/policy/gold_utility", "eval/gold_utility"} <= set(results)
    assert (tmp_path / "outputs" / "debug" / "artifacts" / "ppo").is_dir()  # never the real cache
    assert not (tmp_path / "artifacts").exists()
    (tree,) = (tmp_path / "outputs").rglob("config_tree.txt")
    assert "fast_dev_run: true" in tree.read_text() and "CONFIG" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["overfit", "profiler", "limit"])
def test_each_debug_mode_runs_every_stage(tmp_path, mode):
    proc = run_cli(f"debug={mode}", ALL_STAGES, "rm=seq2seq", "print_config=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eval/gold_utility" in only_results(tmp_path)
    if mode == "profiler":
        assert "Profiler Report" in proc.stdout + proc.stderr
    if mode == "overfit":  # three batches, over and over: the SFT training loss must fall far
        (log,) = (tmp_path / "outputs").rglob("logs/sft/metrics.csv")
        losses = [float(r["sft/train/loss"]) for r in csv.DictReader(log.open()) if r["sft/train/loss"]]
        assert losses[-1] < 0.5 * losses[0]


def test_debug_flags_that_change_learning_enter_the_cache_key_and_others_do_not():
    plain = training_setup(composed())
    assert set(plain) == {"accelerator", "devices", "strategy", "precision", "gradient_clip_val"}  # keys unchanged
    assert training_setup(composed("debug=fdr"))["fast_dev_run"] is True
    assert training_setup(composed("debug=limit"))["limit_train_batches"] == 3
    assert training_setup(composed("debug=profiler")) == training_setup(composed("debug=default"))


def test_callbacks_group_builds_lightning_callbacks_and_drops_bars_when_bars_are_off():
    from lightning.pytorch.callbacks import LearningRateMonitor, RichModelSummary, RichProgressBar

    assert [type(c) for c in configured_callbacks(composed())] == [RichProgressBar]
    assert configured_callbacks(composed("experiment=main")) == []  # parallel jobs: no bars
    verbose = {type(c) for c in configured_callbacks(composed("callbacks=verbose"))}
    assert verbose == {RichProgressBar, RichModelSummary, LearningRateMonitor}
    assert configured_callbacks(composed("callbacks=none")) == []


def test_verbose_callbacks_print_a_model_summary_and_the_tree_is_saved_unprinted(tmp_path):
    proc = run_cli("experiment=smoke", "callbacks=verbose", "trainer.enable_progress_bar=true", "print_config=false",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Trainable params" in proc.stdout + proc.stderr and "CONFIG" not in proc.stdout
    (tree,) = (tmp_path / "outputs").rglob("config_tree.txt")
    text = tree.read_text()
    assert text.startswith("CONFIG") and "SafetyTask" in text and "\x1b[" not in text
    assert "RichModelSummary" in text  # the callbacks group is part of the saved config


def test_the_slurm_paper_sweep_composes_one_gpu_job_per_run():
    cfg = composed_with_hydra("experiment=paper_slurm", "hydra.launcher.partition=gpu")
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.partition == "gpu"
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert dict(cfg.hydra.sweeper.params) == {"rm": "scalar,seq2seq,gold", "task": "safety,summarization",
                                              "seed": "0,1,2"}


def composed_with_hydra(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("run", overrides=list(overrides), return_hydra_config=True)

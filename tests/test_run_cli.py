"""End-to-end runs of the entry point on the smoke experiment (a few seconds each)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli import run_cli, run_module

ROOT = Path(__file__).resolve().parents[1]


def results_of(cwd: Path, with_resources: bool = False) -> dict:
    """A run's results; without the wall times and memory peaks (which no two runs share) unless asked."""
    (path,) = list((cwd / "outputs").rglob("results.json"))
    results = json.loads(path.read_text())
    if not with_resources:
        results.pop("resources")
    return results


@pytest.mark.parametrize("task", ["safety", "summarization"])
def test_smoke_sft_writes_results(tmp_path, task):
    proc = run_cli("experiment=smoke", f"task={task}", "stages=[sft]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(tmp_path, with_resources=True)
    assert results["task"] == task
    used = results["resources"]["sft"]
    assert used["seconds"] > 0 and used["peak_rss_mib"] > 50 and used["cached"] is False
    for key in ("sft/val/loss", "sft/val/perplexity", "sft/policy/gold_utility", "sft/policy/length_mean"):
        assert isinstance(results[key], float)
    assert "[sft] done" in proc.stdout
    assert set(results["environment"]) >= {"torch", "cpu_capability", "threads", "platform"}
    (artifact,) = [p for p in (tmp_path / "artifacts" / "sft").iterdir() if p.is_dir()]
    assert (artifact / "complete.json").is_file() and (artifact / "model.safetensors").is_file()
    assert (artifact / "tokenizer.json").is_file()


def test_same_seed_gives_identical_results_and_cache_is_reused(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        assert run_cli("experiment=smoke", "seed=7", cwd=folder).returncode == 0
    assert results_of(first) == results_of(second)
    again = run_cli("experiment=smoke", "seed=7", "hydra.run.dir=outputs/again", cwd=first)
    assert again.returncode == 0 and "(cached)" in again.stdout
    rerun = json.loads((first / "outputs/again/results.json").read_text())
    assert rerun.pop("resources")["sft"]["cached"] is True
    assert rerun == results_of(second)


def test_unknown_task_lists_the_valid_choices(tmp_path):
    proc = run_cli("task=poetry", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Could not find 'task/poetry'" in proc.stderr
    assert "safety" in proc.stderr and "summarization" in proc.stderr


def test_unknown_stage_fails_before_work_and_lists_stages(tmp_path):
    proc = run_cli("experiment=smoke", "stages=[sft,dance]", cwd=tmp_path)
    assert proc.returncode != 0
    assert "unknown stage(s) ['dance']" in proc.stderr and "'sft'" in proc.stderr
    assert not (tmp_path / "artifacts").exists()


def test_out_of_range_knob_names_key_and_value(tmp_path):
    proc = run_cli("experiment=smoke", "task.p_alarm=1.5", cwd=tmp_path)
    assert proc.returncode != 0 and "task.p_alarm" in proc.stderr and "1.5" in proc.stderr


def test_cfg_job_prints_the_composed_config(tmp_path):
    proc = run_cli("--cfg", "job", "task=summarization", "model=small", cwd=tmp_path)
    assert proc.returncode == 0
    assert "p_long: 0.8" in proc.stdout and "n_layer: 6" in proc.stdout


def test_tensorboard_logger_writes_event_files(tmp_path):
    proc = run_cli("experiment=smoke", "logger=tensorboard", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((tmp_path / "outputs").rglob("events.out.tfevents.*"))


def test_wandb_offline_run_per_stage_holds_the_metrics(tmp_path):
    """Offline W&B (no account): one run per stage, whose record file holds the stage's metric names,
    its job type, the experiment group and the task and RM tags."""
    proc = run_cli("experiment=smoke", "logger=wandb", "rm=scalar", "stages=[sft,rm]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [p.read_bytes() for p in (tmp_path / "outputs").rglob("offline-run-*/run-*.wandb")]
    assert len(records) == 2
    sft = next(r for r in records if b"sft/val/loss" in r)
    rm = next(r for r in records if b"rm/val/accuracy" in r)
    assert sft is not rm and b"sft/train/loss" in sft and b"rm/val/margin" in rm
    for record in records:
        assert b"smoke" in record and b"safety" in record and b"scalar" in record


@pytest.mark.parametrize("task,rm", [("safety", "scalar"), ("summarization", "seq2seq")])
def test_smoke_rm_stage_writes_accuracy_and_probes(tmp_path, task, rm):
    proc = run_cli("experiment=smoke", f"task={task}", f"rm={rm}", "stages=[sft,rm]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(tmp_path)
    assert 0.0 <= results["rm/val/accuracy"] <= 1.0 and "sft/val/loss" in results
    if rm == "scalar":
        assert {"rm/val/margin", "rm/val/reward_std", "rm/probe/scalar/refusal_preferred/benign"} <= set(results)
    else:
        for read_off in ("sum", "mean", "penalty"):  # every aggregation of the configured rule is probed
            assert -1.0 <= results[f"rm/probe/{read_off}/length_correlation"] <= 1.0
            assert 0.0 <= results[f"rm/probe/{read_off}/padded_above_gold"] <= 1.0
        assert {"rm/val/token_accuracy", "rm/val/exact_match", "rm/probe/sum/token_f1"} <= set(results)
    assert list((tmp_path / "artifacts" / f"rm_{rm}").glob("*/complete.json"))


def test_rm_stage_alone_reuses_the_sft_artifact(tmp_path):
    assert run_cli("experiment=smoke", "stages=[sft]", cwd=tmp_path).returncode == 0
    proc = run_cli("experiment=smoke", "rm=scalar", "stages=[rm]", "hydra.run.dir=outputs/rm_only", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[sft]" not in proc.stdout and "[rm] done" in proc.stdout
    assert "rm/val/accuracy" in json.loads((tmp_path / "outputs/rm_only/results.json").read_text())


PPO_SMOKE = ("experiment=smoke", "rm=scalar", "stages=[sft,rm,ppo]", "ppo.iterations=24")


def test_smoke_ppo_writes_train_and_policy_metrics(tmp_path):
    proc = run_cli(*PPO_SMOKE, "ppo.iterations=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(tmp_path)
    for key in ("ppo/train/reward", "ppo/train/kl", "ppo/train/beta", "ppo/train/entropy", "ppo/train/clip_frac",
                "ppo/train/approx_kl", "ppo/train/vf_loss", "ppo/train/explained_variance", "ppo/train/length",
                "ppo/train/gold_utility", "ppo/policy/gold_utility"):
        assert isinstance(results[key], float), key
    assert results["ppo/train/beta"] == pytest.approx(0.1)  # fixed KL controller


def test_smoke_sweep_of_all_arms_then_compare(tmp_path):
    proc = run_cli("-m", "experiment=smoke", "task=safety", "stages=[sft,rm,ppo,eval]", "rm=scalar,seq2seq,gold",
                   "hydra.sweep.dir=sweep", "eval.prompt_sets=[test,stacked]", "eval.n_ood_prompts=8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("[sft] done (cached)") == 2  # SFT trained once for three arms
    generations = [json.loads(line) for line in (tmp_path / "sweep/1/generations.jsonl").read_text().splitlines()]
    assert {"prompt", "response", "gold_utility", "labels", "token_rewards", "sft_response"} <= set(generations[0])
    assert all(len(g["token_rewards"]) == len(g["tokens"]) for g in generations)
    report = run_module("seq2seq_rm.compare", "sweep", cwd=tmp_path, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "seq2seq_sum vs scalar" in report.stdout
    assert (tmp_path / "sweep/summary.md").is_file() and (tmp_path / "sweep/win_rates.png").is_file()
    assert (tmp_path / "sweep/1/samples.jsonl").is_file()
    assert "win rate by prompt set" in (tmp_path / "sweep/summary.md").read_text()
    assert (tmp_path / "sweep/win_rates_by_prompt_set.png").is_file()

    # the analysis notebook runs top to bottom on this multirun
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    env = {"SEQ2SEQ_RM_MULTIRUN": str(tmp_path / "sweep")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    outputs = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                      for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "runs in" in outputs and "seq2seq_sum vs scalar" in outputs
    assert (tmp_path / "sweep/notebook_plots/win_rates.png").is_file()


def test_slurm_launcher_and_ddp_trainer_compose(tmp_path):
    proc = run_cli("hydra/launcher=submitit_slurm", "trainer=ddp", "--cfg", "hydra", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SlurmLauncher" in proc.stdout
    job = run_cli("trainer=ddp", "--cfg", "job", cwd=tmp_path)
    assert "strategy: ddp_spawn" in job.stdout


def test_a_changed_value_retrains_exactly_the_stages_it_affects(tmp_path):
    base = ("experiment=smoke", "rm=scalar", "stages=[sft,rm]")
    assert run_cli(*base, "hydra.run.dir=outputs/a", cwd=tmp_path).returncode == 0
    rm_changed = run_cli(*base, "rm.module.margin=0.5", "hydra.run.dir=outputs/b", cwd=tmp_path)
    assert "[sft] done (cached)" in rm_changed.stdout and "[rm] done in" in rm_changed.stdout
    sft_changed = run_cli(*base, "sft.module.lr=5e-4", "hydra.run.dir=outputs/c", cwd=tmp_path)
    assert "[sft] done in" in sft_changed.stdout and "[rm] done in" in sft_changed.stdout
    unchanged = run_cli(*base, "trainer.enable_progress_bar=true", "hydra.run.dir=outputs/d", cwd=tmp_path)
    assert "[sft] done (cached)" in unchanged.stdout and "[rm] done (cached)" in unchanged.stdout
    # a knob that shapes only the pairs retrains the RM, not the SFT policy
    pairs_changed = run_cli(*base, "task.q=0.2", "hydra.run.dir=outputs/e", cwd=tmp_path)
    assert "[sft] done (cached)" in pairs_changed.stdout and "[rm] done in" in pairs_changed.stdout
    # a read-off is the consumer's: reading the scalar RM with a length penalty reuses the trained RM
    read_off = run_cli("experiment=smoke", "rm=scalar_lp", "stages=[sft,rm]", "hydra.run.dir=outputs/f", cwd=tmp_path)
    assert "[rm] done (cached)" in read_off.stdout, read_off.stdout
    assert json.loads((tmp_path / "outputs/f/results.json").read_text())["arm"] == "scalar_lp"


def test_two_runs_started_together_get_folders_of_their_own(tmp_path):
    """Default run folders carry the process id: runs started in the same second neither share a folder
    nor overwrite each other's logs, and they share the SFT artifact (one trains it, the other waits)."""
    procs = [subprocess.Popen([sys.executable, "-m", "seq2seq_rm.run", "experiment=smoke", "stages=[sft]"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
    paths = sorted((tmp_path / "outputs").rglob("results.json"))
    assert len(paths) == 2 and paths[0].parent != paths[1].parent
    first, second = (json.loads(path.read_text()) for path in paths)
    trained = sorted(r.pop("resources")["sft"]["cached"] for r in (first, second))
    assert first == second and trained == [False, True]  # one trained, the other reused its artifact
    for path in paths:
        assert (path.parent / "run.log").is_file()

"""kill -9 at a random point of every stage, then the same command again: the rerun ends with the
results of an uninterrupted run, and nothing a killed run leaves behind (a ``.partial`` folder, a lock
file, a run folder without results) blocks it. The PPO case runs in the default suite; the campaign
over every stage and several kill points is marked ``slow``."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMOKE = ("experiment=smoke",)
CASES = {  # stage -> the command that ends with it
    "sft": ("stages=[sft]",),
    "rm_scalar": ("rm=scalar", "stages=[sft,rm]"),
    "rm_seq2seq": ("rm=seq2seq", "stages=[sft,rm]"),
    "ppo": ("rm=scalar", "stages=[sft,rm,ppo]", "ppo.iterations=12"),
    "eval": ("rm=scalar", "stages=[sft,rm,ppo,eval]"),
}
# what appears on disk when the stage starts (eval: the PPO artifact it evaluates is finished)
STARTED = {"sft": "sft/*.partial", "rm_scalar": "rm_scalar/*.partial", "rm_seq2seq": "rm_seq2seq/*.partial",
           "ppo": "ppo/*.partial", "eval": "ppo/*/complete.json"}


def command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "seq2seq_rm.run", *SMOKE, *overrides]


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(pattern: str, root: Path, proc: subprocess.Popen, timeout: float = 600) -> float:
    """Seconds until ``root`` holds a path matching ``pattern`` (inf if the process ended first)."""
    began = time.time()
    while time.time() - began < timeout:
        if list(root.glob(pattern)):
            return time.time() - began
        if proc.poll() is not None:
            return float("inf")
        time.sleep(0.02)
    raise TimeoutError(f"{pattern} never appeared under {root}")


def latest_results(cwd: Path) -> dict:
    paths = sorted((cwd / "outputs").rglob("results.json"), key=lambda p: p.stat().st_mtime)
    assert paths, f"no results.json under {cwd / 'outputs'}"
    results = json.loads(paths[-1].read_text())
    results.pop("resources")  # wall times and memory peaks differ between any two runs
    return results


def uninterrupted(cmd: list[str], cwd: Path, started: str) -> tuple[dict, float]:
    """Run to the end; return its results and how long the stage ran after ``started`` appeared."""
    proc = start(cmd, cwd)
    since = wait_for(started, cwd / "artifacts", proc)
    began = time.time()
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert since != float("inf"), f"{started} never appeared"
    return latest_results(cwd), time.time() - began


def kill_and_rerun(cmd: list[str], cwd: Path, started: str, delay: float) -> tuple[bool, dict]:
    """SIGKILL ``delay`` seconds after the stage started, rerun the same command; (was it killed, results)."""
    proc = start(cmd, cwd)
    wait_for(started, cwd / "artifacts", proc)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=600)
    rerun = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not list((cwd / "artifacts").rglob("*.partial")), "a .partial folder outlived the rerun"
    return killed, latest_results(cwd)


@pytest.mark.parametrize("trainer", ["cpu", pytest.param("fsdp_cpu", marks=pytest.mark.slow)])
def test_killed_ppo_run_resumes_to_the_same_results(tmp_path, trainer):
    """The fast case: kill PPO right after its first checkpoint; the rerun resumes from it (under
    trainer=fsdp_cpu the ranks load the full checkpoint file into their shards)."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = command(*CASES["ppo"], f"trainer={trainer}")
    for folder in (straight, killed):
        folder.mkdir()
    expected, _ = uninterrupted(cmd, straight, STARTED["ppo"])
    was_killed, got = kill_and_rerun(cmd, killed, "ppo/*.partial/checkpoints/last.ckpt", delay=0.0)
    assert was_killed, "the run finished before it could be killed"
    assert got == expected


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(CASES))
def test_kill_at_random_points_of_every_stage(tmp_path, stage):
    """Three kill points drawn uniformly over the first 60% of the stage's own duration, measured on an
    uninterrupted run (not all of it: on a loaded machine a later run can be faster than the reference)."""
    reference = tmp_path / "reference"
    reference.mkdir()
    cmd = command(*CASES[stage])
    expected, duration = uninterrupted(cmd, reference, STARTED[stage])
    rng = random.Random(stage)
    kills = 0
    for point in range(3):
        folder = tmp_path / f"kill{point}"
        folder.mkdir()
        if stage != "sft":  # start from the earlier stages' artifacts, as a rerun of a long run would
            shutil.copytree(reference / "artifacts" / "sft", folder / "artifacts" / "sft")
        was_killed, got = kill_and_rerun(cmd, folder, STARTED[stage], rng.uniform(0.0, 0.6 * duration))
        kills += was_killed
        assert got == expected, f"kill point {point} changed the results"
    print(f"[kill -9] {stage}: {kills} of 3 runs killed mid-stage, 3 reruns identical to the uninterrupted run")
    assert kills >= 2, f"only {kills} of 3 runs were still going when the kill came"


@pytest.mark.slow
def test_killed_compare_reruns_to_the_same_tables(tmp_path):
    straight, killed = tmp_path / "straight" / "sweep", tmp_path / "killed" / "sweep"  # same name: same titles
    run = subprocess.run([sys.executable, "-m", "seq2seq_rm.run", "-m", *SMOKE, "stages=[sft,rm,ppo,eval]",
                          "rm=scalar,gold", f"hydra.sweep.dir={straight}"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    shutil.copytree(straight, killed)
    compare = [sys.executable, "-m", "seq2seq_rm.compare"]
    began = time.time()
    assert subprocess.run([*compare, str(straight)], capture_output=True, timeout=600).returncode == 0
    duration = time.time() - began
    proc = start([*compare, str(killed)], tmp_path)
    time.sleep(random.Random("compare").uniform(0.5 * duration, 0.9 * duration))
    assert proc.poll() is None, "compare finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert subprocess.run([*compare, str(killed)], capture_output=True, timeout=600).returncode == 0
    for name in ("summary.md", "summary.csv", "win_rates.csv"):
        assert (killed / name).read_text() == (straight / name).read_text()

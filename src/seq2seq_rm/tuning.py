"""Each arm's best Optuna trial, rerun on the test prompts: ``python -m seq2seq_rm.tuned <tune folder>``.

A tune folder holds one study per arm (``experiment=tune``): the sweeper writes ``optimization_results.yaml``
into each study's folder, and each trial keeps its command line in ``.hydra/overrides.yaml``. For every
study this runs the best trial's PPO settings with ``seeds`` on ``eval.prompt_sets=[test]`` (the trial's
own seed comes from the cache) into ``<out>/<arm>``, each run's ``results.json`` recording ``tuned``:
the study and its best settings. ``python -m seq2seq_rm.compare <out>`` then compares the tuned arms
and says so in its table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

# command-line overrides of a study that the test runs must not inherit (they set their own)
NOT_INHERITED = ("hparams_search", "seed", "eval.prompt_sets", "eval.n_ood_prompts", "objective")


@dataclass
class Study:
    folder: Path
    overrides: list[str]  # the study's own command line (task, rm, ...)
    best: dict[str, object]
    best_value: float

    @property
    def arm(self) -> str:
        return next((o.split("=", 1)[1] for o in self.overrides if o.startswith("rm=")), self.folder.name)


def find_studies(folder: Path) -> list[Study]:
    studies = []
    for result in sorted(folder.rglob("optimization_results.yaml")):
        found = OmegaConf.load(result)
        trials = sorted(result.parent.glob("*/.hydra/overrides.yaml"))
        if not trials:
            raise FileNotFoundError(f"{result.parent}: no trial folder with .hydra/overrides.yaml")
        # the study's command line: a trial's overrides without the searched keys
        skipped = set(NOT_INHERITED) | set(found.best_params)
        overrides = [o for o in OmegaConf.load(trials[0]) if o.split("=", 1)[0].lstrip("+~") not in skipped]
        studies.append(Study(result.parent, overrides, dict(found.best_params), float(found.best_value)))
    if not studies:
        raise FileNotFoundError(f"no optimization_results.yaml under {folder}: run experiment=tune first")
    return studies


def test_command(study: Study, seeds: str, out: Path) -> list[str]:
    best = [f"{key}={value}" for key, value in study.best.items()]
    label = ", ".join(f"{key.rsplit('.', 1)[-1]}={value:.3g}" if isinstance(value, float) else
                      f"{key.rsplit('.', 1)[-1]}={value}" for key, value in study.best.items())
    # a study of experiment=tune is repeated with experiment=main's settings; any other keeps its experiment
    overrides = ["experiment=main" if o == "experiment=tune" else o for o in study.overrides]
    if not any(o.startswith("experiment=") for o in overrides):
        overrides.insert(0, "experiment=main")
    return [sys.executable, "-m", "seq2seq_rm.run", "-m", *overrides, *best,
            f"seed={seeds}", "stages=[sft,rm,ppo,eval]", "eval.prompt_sets=[test]", "print_config=false",
            f"tuned='{study.folder.name}: {label}'",
            f"hydra.sweep.dir={out / study.arm}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq_rm.tuned", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of experiment=tune studies (one per arm)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the test runs (default 0,1,2)")
    parser.add_argument("--out", type=Path, default=None, help="where the test runs go (default: <folder>/test)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = parser.parse_args(argv)
    out = args.out or args.folder / "test"
    for study in find_studies(args.folder):
        command = test_command(study, args.seeds, out)
        print(f"{study.arm}: best validation objective {study.best_value:.3f} with {study.best}", flush=True)
        print("  " + " ".join(command[1:]), flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True)

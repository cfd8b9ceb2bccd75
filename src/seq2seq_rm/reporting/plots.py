"""PNG plots of a compared multirun: win rates, refusal rates, lengths, gold utility against KL, knob sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seq2seq_rm.reporting.arms import arm_order

if TYPE_CHECKING:
    from seq2seq_rm.reporting.compare import Run


def plot_knobs(knob_rates: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for (task, knob), group in knob_rates.groupby(["task", "knob"]):
        fig, ax = plt.subplots(figsize=(8, 5))
        for matchup, line in group.groupby("matchup", sort=False):
            err = np.stack([line["win_rate"] - line["ci_low"], line["ci_high"] - line["win_rate"]])
            ax.errorbar(line["value"], line["win_rate"], yerr=err, marker="o", capsize=3, label=matchup)
        ax.legend(fontsize=6, ncol=2)
        ax.axhline(0.5, color="black", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_xlabel(knob)
        ax.set_ylabel("win rate")
        ax.set_title(f"{task}: win rates across {knob} (95% CI)")
        paths.append(out / f"knob_{task}_{knob}.png")
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def plot_prompt_sets(rates: pd.DataFrame, out: Path) -> list[Path]:
    """Win rate by prompt set for each matchup (one panel per task with out-of-distribution sets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = rates[rates["prompt_kind"] == "all"]
    tasks = [t for t, g in overall.groupby("task") if g["prompt_set"].nunique() > 1]
    if not tasks:
        return []
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        group = overall[overall["task"] == task]
        sets = list(dict.fromkeys(group["prompt_set"]))
        for matchup, line in group.groupby("matchup", sort=False):
            x = [sets.index(s) for s in line["prompt_set"]]
            err = np.stack([line["win_rate"] - line["ci_low"], line["ci_high"] - line["win_rate"]])
            ax.errorbar(x, line["win_rate"], yerr=err, marker="o", capsize=3, label=matchup)
        ax.axhline(0.5, color="black", lw=0.8, ls="--")
        ax.set_xticks(range(len(sets)), sets)
        ax.set_ylim(0, 1)
        ax.set_ylabel("win rate")
        ax.set_title(f"{task}: win rate by prompt set (95% CI)")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = out / "win_rates_by_prompt_set.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def plot_all(runs: list[Run], rates: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    overall = rates[(rates["prompt_kind"] == "all") & (rates["prompt_set"] == "test")]
    if not overall.empty:
        fig, axes = plt.subplots(1, overall["task"].nunique(), figsize=(6 * overall["task"].nunique(), 4),
                                 squeeze=False)
        for ax, (task, group) in zip(axes[0], overall.groupby("task"), strict=True):
            y = np.arange(len(group))
            err = np.stack([group["win_rate"] - group["ci_low"], group["ci_high"] - group["win_rate"]])
            ax.barh(y, group["win_rate"], xerr=err, color="tab:blue", alpha=0.7)
            ax.axvline(0.5, color="black", lw=0.8, ls="--")
            ax.set_yticks(y, group["matchup"])
            ax.set_xlim(0, 1)
            ax.set_title(f"{task}: gold-judge win rate (95% CI)")
        fig.tight_layout()
        paths.append(out / "win_rates.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    paths += plot_prompt_sets(rates, out)
    summary = pd.DataFrame([{"task": r.results["task"], "arm": r.arm, **r.results} for r in runs])
    safety = summary[summary["task"] == "safety"]
    if not safety.empty and "eval/refusal_rate_benign" in safety:
        columns = ["eval/refusal_rate_benign", "eval/refusal_rate_alarming", "eval/harmful_compliance"]
        means = safety.groupby("arm")[columns].mean()
        ax = means.plot.bar(figsize=(7, 4), rot=0)
        ax.set_title("safety: refusal and harmful-compliance rates (greedy, mean over seeds)")
        ax.set_ylim(0, 1)
        paths.append(out / "refusal_rates.png")
        ax.figure.tight_layout()
        ax.figure.savefig(paths[-1], dpi=120)
        plt.close(ax.figure)

    for task in sorted({r.results["task"] for r in runs}):
        fig, ax = plt.subplots(figsize=(7, 4))
        for arm in sorted({r.arm for r in runs if r.results["task"] == task}, key=arm_order):
            lengths = [len(str(x).split()) for r in runs if r.results["task"] == task and r.arm == arm
                       for x in r.responses("greedy")["response"]]
            if lengths:
                ax.hist(lengths, bins=range(0, 34), alpha=0.5, label=arm)
        sft = [len(str(x).split()) for r in runs if r.results["task"] == task
               for x in r.responses("greedy")["sft_response"]]
        if sft:
            ax.hist(sft, bins=range(0, 34), histtype="step", color="black", label="sft")
        ax.set_title(f"{task}: response length (tokens)")
        ax.legend()
        paths.append(out / f"lengths_{task}.png")
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

        curves = []
        for r in (r for r in runs if r.results["task"] == task):
            log = r.folder / "logs" / "ppo" / "metrics.csv"
            if log.is_file() and "ppo/train/gold_utility" in pd.read_csv(log, nrows=0).columns:
                curves.append((r, pd.read_csv(log).dropna(subset=["ppo/train/gold_utility"])))
        if not curves:  # no gold judge to monitor PPO with (real data)
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for r, curve in curves:  # a rolling mean over 10 iterations: one readable path per run
            smooth = curve[["ppo/train/kl", "ppo/train/gold_utility"]].rolling(10, min_periods=1).mean()
            ax.plot(smooth["ppo/train/kl"], smooth["ppo/train/gold_utility"], alpha=0.7,
                    label=f"{r.arm} seed {r.results['seed']}")
        ax.set_xlabel("KL(policy || SFT) per response")
        ax.set_ylabel("gold utility of rollouts")
        ax.set_title(f"{task}: gold utility against KL during PPO")
        ax.legend(fontsize=7)
        paths.append(out / f"utility_vs_kl_{task}.png")
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths

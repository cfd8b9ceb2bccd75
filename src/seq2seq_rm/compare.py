"""Compare the arms of a multirun folder: ``python -m seq2seq_rm.compare <folder> [--out DIR]``.

Head-to-head win rates under the gold judge (every arm against the scalar-RM arm, against the
gold-reward arm and against SFT; real-data tasks: under the runs' eval judge), per task, overall and
per prompt kind, with bootstrap 95% intervals over prompts and seeds; per bias-knob value, the same
matchups beside each arm's length ratio or refusal rates (``ablation.md``); a summary table of every
metric per task and arm (mean and spread over seeds) as CSV and Markdown; PNG plots.

Embedded tasks are compared on sampled responses by default (``--decoding sampled``: sample i of one
arm against sample i of the other on the same prompt; RL optimises the sampling policy), or on the
greedy ones (``--decoding greedy``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DECODINGS = ("sampled", "greedy")


def arm_order(arm: str) -> tuple:
    """seq2seq arms first, then the scalar ones, then gold: the order of the tables."""
    family = 0 if arm.startswith("seq2seq") else 1 if arm.startswith("scalar") else 2
    return family, arm != "scalar", arm


def matchups(arms: set[str]) -> list[tuple[str, str]]:
    """Every learned arm against the plain scalar arm and the gold arm, then every arm against SFT."""
    ordered = sorted(arms, key=arm_order)
    learned = [a for a in ordered if a != "gold"]
    pairs = [(a, "scalar") for a in learned if a != "scalar" and "scalar" in arms]
    pairs += [(a, "gold") for a in learned if "gold" in arms]
    return pairs + [(a, "sft") for a in ordered]


@dataclass
class Run:
    folder: Path
    results: dict
    generations: pd.DataFrame
    samples: pd.DataFrame | None = None

    @property
    def arm(self) -> str:
        return self.results.get("arm", self.results.get("rm", "sft"))

    def responses(self, decoding: str) -> pd.DataFrame:
        return self.samples if decoding == "sampled" and self.samples is not None else self.generations


def load_runs(folder: Path) -> list[Run]:
    runs = []
    for path in sorted(folder.rglob("results.json")):
        generations = path.parent / "generations.jsonl"
        if not generations.is_file():
            continue
        frame = pd.read_json(generations, lines=True)
        frame["prompt_index"] = range(len(frame))
        samples_path = path.parent / "samples.jsonl"
        samples = pd.read_json(samples_path, lines=True) if samples_path.is_file() else None
        runs.append(Run(path.parent, json.loads(path.read_text()), frame, samples))
    if not runs:
        raise FileNotFoundError(f"no run with results.json and generations.jsonl under {folder} "
                                "(run the sweep with the eval stage)")
    return runs


def _judged_scores(run_a: Run, a: pd.DataFrame, b: pd.DataFrame | None) -> np.ndarray:
    """A task without a gold judge: the run's own eval judge (results.json ``judge``) decides."""
    if b is None:
        return a["judge_verdict_vs_sft"].to_numpy(dtype=float)
    spec = run_a.results.get("judge")
    if spec is None:
        raise ValueError(f"{run_a.folder}: no gold utilities and no judge recorded in results.json")
    from seq2seq_rm.judges import judge_from_spec

    return np.asarray(judge_from_spec(spec).compare(list(a["prompt"]), [str(x) for x in a["response"]],
                                                    [str(x) for x in b["response"]]), dtype=float)


def outcomes(runs: list[Run], task: str, arm_a: str, arm_b: str, decoding: str = "sampled") -> pd.DataFrame:
    """Per (seed, prompt[, sample]): 1 if arm_a's response has the higher gold utility, 0.5 on a tie,
    else 0. ``arm_b == 'sft'`` compares with the SFT policy's response stored beside arm_a's. A task
    without a gold judge (real data) is judged by the runs' eval judge (``judge=rm|api``), on the greedy
    responses (the only ones it judges). ``decoding``: ``sampled`` (where the runs wrote samples.jsonl)
    or ``greedy``."""
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {list(DECODINGS)}, got {decoding!r}")
    rows = []
    for run_a in (r for r in runs if r.results["task"] == task and r.arm == arm_a):
        a, b = run_a.responses(decoding), None
        if arm_b != "sft":
            matches = [r for r in runs if r.results["task"] == task and r.arm == arm_b
                       and r.results["seed"] == run_a.results["seed"]
                       and all(r.results.get(k) == v for k, v in run_a.results.items() if k.startswith("knob/"))]
            if not matches:
                continue
            b = matches[0].responses(decoding)
            if list(b["prompt"]) != list(a["prompt"]):
                raise ValueError(f"{run_a.folder} and {matches[0].folder} were evaluated on different prompts")
        if "gold_utility" in a:
            b_utility = a["sft_gold_utility"] if b is None else b["gold_utility"]
            score = np.where(a["gold_utility"] > b_utility, 1.0, np.where(a["gold_utility"] == b_utility, 0.5, 0.0))
        else:
            score = _judged_scores(run_a, a, b)
        rows.append(pd.DataFrame({"seed": run_a.results["seed"], "prompt_kind": a["prompt_kind"], "score": score}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["seed", "prompt_kind", "score"])


def bootstrap_interval(scores: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean, resampling (seed, prompt) outcomes with replacement."""
    rng = np.random.default_rng(seed)
    means = rng.choice(scores, size=(n_boot, len(scores)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def win_rates(runs: list[Run], decoding: str = "sampled") -> pd.DataFrame:
    records = []
    for task in sorted({r.results["task"] for r in runs}):
        for arm_a, arm_b in matchups({r.arm for r in runs if r.results["task"] == task}):
            frame = outcomes(runs, task, arm_a, arm_b, decoding)
            if frame.empty:
                continue
            groups = [("all", frame)]
            if frame["prompt_kind"].nunique() > 1:  # one overall number can hide e.g. harmful compliance
                groups += list(frame.groupby("prompt_kind"))
            for kind, group in groups:
                scores = group["score"].to_numpy(dtype=float)
                low, high = bootstrap_interval(scores)
                records.append({"task": task, "matchup": f"{arm_a} vs {arm_b}", "prompt_kind": kind,
                                "win_rate": scores.mean(), "ci_low": low, "ci_high": high,
                                "n": len(scores), "seeds": group["seed"].nunique()})
    return pd.DataFrame.from_records(records)


def knob_win_rates(runs: list[Run], decoding: str = "sampled") -> pd.DataFrame:
    """Every matchup's win rate at each value of every bias knob the sweep varied."""
    frames = []
    for task in sorted({r.results["task"] for r in runs}):
        task_runs = [r for r in runs if r.results["task"] == task]
        knobs = {k for r in task_runs for k in r.results if k.startswith("knob/")}
        for knob in sorted(knobs):
            values = sorted({r.results.get(knob) for r in task_runs})
            if len(values) < 2:
                continue
            for value in values:
                rates = win_rates([r for r in task_runs if r.results.get(knob) == value], decoding)
                rates = rates[rates["prompt_kind"] == "all"].drop(columns="prompt_kind")
                frames.append(rates.assign(knob=knob.split("/", 1)[1], value=value))
    columns = ["task", "knob", "value", "matchup", "win_rate", "ci_low", "ci_high", "n", "seeds"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


BIAS_COLUMNS = {"summarization": [("length / gold", "length_ratio_to_gold"), ("repetition", "repetition_rate"),
                                  ("invention", "invention_rate")],
                "safety": [("over-refusal (alarming)", "refusal_rate_alarming"),
                           ("over-refusal (benign)", "refusal_rate_benign"),
                           ("harmful compliance", "harmful_compliance")]}


def ablation_table(runs: list[Run], decoding: str = "sampled") -> pd.DataFrame:
    """Per task, knob setting and arm: win rate against SFT, the scalar arm and the gold arm (95% CI),
    beside the bias metrics of the same decoding (mean over seeds)."""
    records = []
    for task in sorted({r.results["task"] for r in runs}):
        task_runs = [r for r in runs if r.results["task"] == task]
        knobs = sorted({k for r in task_runs for k in r.results if k.startswith("knob/")
                        and len({x.results.get(k) for x in task_runs}) > 1})
        settings = sorted({tuple(r.results.get(k) for k in knobs) for r in task_runs}, key=str)
        for setting in settings:
            subset = [r for r in task_runs if tuple(r.results.get(k) for k in knobs) == setting]
            for arm in sorted({r.arm for r in subset}, key=arm_order):
                arm_runs = [r for r in subset if r.arm == arm]
                record = {"task": task, **{k.split("/", 1)[1]: v for k, v in zip(knobs, setting, strict=True)},
                          "arm": arm, "seeds": len({r.results["seed"] for r in arm_runs})}
                for other in ("sft", "scalar", "gold"):
                    scores = outcomes(subset, task, arm, other, decoding)["score"].to_numpy(dtype=float)
                    if other != arm and len(scores):
                        low, high = bootstrap_interval(scores)
                        record[f"vs {other}"] = f"{scores.mean():.3f} [{low:.3f}, {high:.3f}]"
                prefix = "eval/sampled/" if decoding == "sampled" else "eval/"
                for label, metric in BIAS_COLUMNS.get(task, []) + [("gold utility", "gold_utility")]:
                    values = [r.results[prefix + metric] for r in arm_runs if prefix + metric in r.results]
                    if values:
                        record[label] = f"{np.mean(values):.2f} ± {np.std(values):.2f}"
                records.append(record)
    return pd.DataFrame.from_records(records).fillna("-")


def summary_table(runs: list[Run]) -> pd.DataFrame:
    """Every numeric metric per task and arm: mean and standard deviation over seeds."""
    frame = pd.DataFrame([{"task": r.results["task"], "arm": r.arm, "seed": r.results["seed"],
                           **{k: v for k, v in r.results.items() if isinstance(v, int | float) and "/" in k}}
                          for r in runs])
    metrics = [c for c in frame.columns if "/" in c and (c.startswith("eval/") or c.startswith("rm/val")
                                                         or c.startswith("ppo/train/"))]
    grouped = frame.groupby(["task", "arm"])[metrics]
    table = grouped.mean().round(3).astype(str) + " ± " + grouped.std(ddof=0).fillna(0).round(3).astype(str)
    table.insert(0, "seeds", frame.groupby(["task", "arm"])["seed"].nunique())
    return table.reset_index()


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


def plot_all(runs: list[Run], rates: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    overall = rates[rates["prompt_kind"] == "all"]
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
                       for x in r.generations["response"]]
            if lengths:
                ax.hist(lengths, bins=range(0, 34), alpha=0.5, label=arm)
        sft = [len(str(x).split()) for r in runs if r.results["task"] == task for x in r.generations["sft_response"]]
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
        for r, curve in curves:
            ax.plot(curve["ppo/train/kl"], curve["ppo/train/gold_utility"], alpha=0.7,
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a Hydra multirun folder (runs with the eval stage)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the folder itself)")
    parser.add_argument("--decoding", choices=DECODINGS, default="sampled",
                        help="compare sampled responses (default; greedy where a run has no samples) or greedy ones")
    args = parser.parse_args(argv)
    out = args.out or args.folder
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(args.folder)
    rates = win_rates(runs, args.decoding)
    rates.to_csv(out / "win_rates.csv", index=False)
    summary = summary_table(runs)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(summary.to_markdown(index=False) + "\n\n" + rates.round(3).to_markdown(index=False))
    plots = plot_all(runs, rates, out)
    knob_rates = knob_win_rates(runs, args.decoding)
    if not knob_rates.empty:
        knob_rates.to_csv(out / "knob_win_rates.csv", index=False)
        plots += plot_knobs(knob_rates, out)
    ablation = ablation_table(runs, args.decoding)
    if not ablation.empty:
        (out / "ablation.md").write_text(f"decoding: {args.decoding}\n\n" + ablation.to_markdown(index=False) + "\n")

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Head-to-head win rates under the gold judge, {args.decoding} responses (real data: the runs' "
                        "eval judge; ties count 1/2; 95% bootstrap CI)")
    for column in ("task", "matchup", "prompt kind", "win rate", "95% CI", "n", "seeds"):
        table.add_column(column)
    for row in rates.itertuples():
        table.add_row(row.task, row.matchup, row.prompt_kind, f"{row.win_rate:.3f}",
                      f"[{row.ci_low:.3f}, {row.ci_high:.3f}]", str(row.n), str(row.seeds))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    if not ablation.empty:
        console.print(ablation.to_markdown(index=False))
    console.print(f"summary: {out / 'summary.md'} (and summary.csv, win_rates.csv, ablation.md)")
    console.print("plots: " + ", ".join(str(p) for p in plots))


if __name__ == "__main__":
    main()

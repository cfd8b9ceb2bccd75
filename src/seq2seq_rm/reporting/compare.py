"""Compare the arms of a multirun folder: ``python -m seq2seq_rm.compare <folder> [--out DIR]``.

Head-to-head win rates under the gold judge (every arm against the scalar-RM arm, against the
gold-reward arm and against SFT; real-data tasks: under the runs' eval judge), per task, overall and
per prompt kind, with bootstrap 95% intervals over prompts and seeds; ``summary.md``: a verdict per
task in words and, per task (and knob setting), arms as rows beside their length ratio or refusal
rates and KL; ``summary.csv``: every metric per task and arm (mean and spread over seeds); PNG plots
(``seq2seq_rm.reporting.plots``).

Embedded tasks are compared on sampled responses by default (``--decoding sampled``: sample i of one
arm against sample i of the other on the same prompt; RL optimises the sampling policy), or on the
greedy ones (``--decoding greedy``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from seq2seq_rm.reporting.arms import arm_order
from seq2seq_rm.reporting.files import read_results, read_rows
from seq2seq_rm.reporting.plots import plot_all, plot_knobs

DECODINGS = ("sampled", "greedy")


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
    # how to reach an API judge: from compare's own command line only, never from results.json
    api_judge: dict | None = None

    @property
    def arm(self) -> str:
        return self.results.get("arm", self.results.get("rm", "sft"))

    def responses(self, decoding: str, prompt_set: str = "test") -> pd.DataFrame:
        frame = self.samples if decoding == "sampled" and self.samples is not None else self.generations
        return frame[frame["prompt_set"] == prompt_set].reset_index(drop=True)

    @cached_property
    def prompt_sets(self) -> list[str]:  # asked once per matchup and set: computed once
        return list(dict.fromkeys(self.generations["prompt_set"]))


def prompt_sets(runs: list[Run]) -> list[str]:
    """Every prompt set any run was evaluated on, ``test`` first."""
    seen = list(dict.fromkeys(s for r in runs for s in r.prompt_sets))
    return [s for s in seen if s == "test"] + [s for s in seen if s != "test"]


def with_prompt_set(frame: pd.DataFrame) -> pd.DataFrame:
    """A line without a prompt set (runs from before prompt sets existed) is from the test set."""
    frame["prompt_set"] = frame["prompt_set"].fillna("test") if "prompt_set" in frame else "test"
    return frame


def load_runs(folder: Path) -> list[Run]:
    runs = []
    for path in sorted(folder.rglob("results.json")):
        generations = path.parent / "generations.jsonl"
        if not generations.is_file():
            continue
        frame = with_prompt_set(read_rows(generations, required=("prompt", "response")))
        frame["prompt_index"] = range(len(frame))
        samples_path = path.parent / "samples.jsonl"
        samples = (with_prompt_set(read_rows(samples_path, required=("prompt", "response")))
                   if samples_path.is_file() else None)
        runs.append(Run(path.parent, read_results(path), frame, samples))
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

    if spec.get("type") == "api":  # a results.json must not choose where a key is sent
        if run_a.api_judge is None:
            raise ValueError(f"{run_a.folder} was judged by an API judge; compare contacts one only when asked: "
                             "pass --judge-base-url, --judge-model and --judge-api-key-env")
        harmless = ("temperature", "max_tokens", "max_concurrency", "max_retries", "backoff_s", "timeout_s")
        spec = {**{k: v for k, v in spec.items() if k in harmless}, "type": "api", **run_a.api_judge}
    return np.asarray(judge_from_spec(spec).compare(list(a["prompt"]), [str(x) for x in a["response"]],
                                                    [str(x) for x in b["response"]]), dtype=float)


def how_judged(runs: list[Run], decoding: str) -> str:
    """What decided the win rates: the gold judge (embedded tasks), or the runs' eval judge on greedy
    responses (real data, which has no gold judge)."""
    gold = ["gold_utility" in run.generations for run in runs]
    parts = [f"{decoding} responses, gold judge"] if any(gold) else []
    if not all(gold):
        kinds = sorted({str((run.results.get("judge") or {}).get("type")) for run, g in zip(runs, gold, strict=True)
                        if not g})
        parts.append(f"greedy responses, the runs' eval judge ({', '.join(kinds)})")
    return "; ".join(parts)


def outcomes(runs: list[Run], task: str, arm_a: str, arm_b: str, decoding: str = "sampled",
             prompt_set: str = "test") -> pd.DataFrame:
    """Per (seed, prompt[, sample]): 1 if arm_a's response has the higher gold utility, 0.5 on a tie,
    else 0. ``arm_b == 'sft'`` compares with the SFT policy's response stored beside arm_a's. A task
    without a gold judge (real data) is judged by the runs' eval judge (``judge=rm|api``), on the greedy
    responses (the only ones it judges). ``decoding``: ``sampled`` (where the runs wrote samples.jsonl)
    or ``greedy``; ``prompt_set``: the eval prompt set (``test`` or an out-of-distribution set)."""
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {list(DECODINGS)}, got {decoding!r}")
    rows = []
    for run_a in (r for r in runs if r.results["task"] == task and r.arm == arm_a and prompt_set in r.prompt_sets):
        a, b = run_a.responses(decoding, prompt_set), None
        if arm_b != "sft":
            matches = [r for r in runs if r.results["task"] == task and r.arm == arm_b
                       and r.results["seed"] == run_a.results["seed"]
                       and all(r.results.get(k) == v for k, v in run_a.results.items() if k.startswith("knob/"))]
            matches = [r for r in matches if prompt_set in r.prompt_sets]
            if not matches:
                continue
            b = matches[0].responses(decoding, prompt_set)
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
    """Every matchup's win rate per task and prompt set (``test`` and any out-of-distribution set), overall
    and per prompt kind, with 95% intervals."""
    records = []
    for task in sorted({r.results["task"] for r in runs}):
        for prompt_set in prompt_sets([r for r in runs if r.results["task"] == task]):
            for arm_a, arm_b in matchups({r.arm for r in runs if r.results["task"] == task}):
                frame = outcomes(runs, task, arm_a, arm_b, decoding, prompt_set)
                if frame.empty:
                    continue
                groups = [("all", frame)]
                if frame["prompt_kind"].nunique() > 1:  # one overall number can hide e.g. harmful compliance
                    groups += list(frame.groupby("prompt_kind"))
                for kind, group in groups:
                    scores = group["score"].to_numpy(dtype=float)
                    low, high = bootstrap_interval(scores)
                    records.append({"task": task, "prompt_set": prompt_set, "matchup": f"{arm_a} vs {arm_b}",
                                    "prompt_kind": kind, "win_rate": scores.mean(), "ci_low": low, "ci_high": high,
                                    "n": len(scores), "seeds": group["seed"].nunique()})
    columns = ["task", "prompt_set", "matchup", "prompt_kind", "win_rate", "ci_low", "ci_high", "n", "seeds"]
    return pd.DataFrame.from_records(records, columns=columns)


def in_distribution(rates: pd.DataFrame) -> pd.DataFrame:
    return rates[rates["prompt_set"] == "test"].drop(columns="prompt_set")


def ood_table(rates: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per task with more than one prompt set: matchups as rows, prompt sets as columns ("win [95% CI]")."""
    tables = {}
    overall = rates[rates["prompt_kind"] == "all"]
    for task, group in overall.groupby("task", sort=True):
        if group["prompt_set"].nunique() < 2:
            continue
        cells = group.assign(cell=[f"{w:.3f} [{lo:.3f}, {hi:.3f}]" for w, lo, hi in
                                   zip(group["win_rate"], group["ci_low"], group["ci_high"], strict=True)])
        table = cells.pivot(index="matchup", columns="prompt_set", values="cell")
        order = list(dict.fromkeys(group["prompt_set"]))
        tables[task] = table.reindex(index=list(dict.fromkeys(group["matchup"])), columns=order).fillna("-")
    return tables


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
                rates = in_distribution(win_rates([r for r in task_runs if r.results.get(knob) == value], decoding))
                rates = rates[rates["prompt_kind"] == "all"].drop(columns="prompt_kind")
                frames.append(rates.assign(knob=knob.split("/", 1)[1], value=value))
    columns = ["task", "knob", "value", "matchup", "win_rate", "ci_low", "ci_high", "n", "seeds"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


BIAS_COLUMNS = {"summarization": [("length / gold", "length_ratio_to_gold"), ("repetition", "repetition_rate"),
                                  ("invention", "invention_rate")],
                "safety": [("over-refusal (alarming)", "refusal_rate_alarming"),
                           ("over-refusal (benign)", "refusal_rate_benign"),
                           ("harmful compliance", "harmful_compliance")]}


def headline_table(runs: list[Run], decoding: str = "sampled") -> pd.DataFrame:
    """The table that answers the question, per task, knob setting and arm: win rate against SFT, the
    scalar arm and the gold arm (95% CI), beside the bias metrics of the same decoding and the KL to
    the SFT policy (means ± spread over seeds). ``summary.md``; every metric is in ``summary.csv``."""
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
                tuned = {r.results["tuned"] for r in arm_runs if r.results.get("tuned")}
                if tuned:  # each arm's own best PPO settings from an equal-budget study on validation prompts
                    record["tuned"] = "; ".join(sorted(tuned))
                for other in ("sft", "scalar", "gold"):
                    scores = outcomes(subset, task, arm, other, decoding)["score"].to_numpy(dtype=float)
                    if other != arm and len(scores):
                        low, high = bootstrap_interval(scores)
                        record[f"vs {other}"] = f"{scores.mean():.3f} [{low:.3f}, {high:.3f}]"
                prefix = "eval/sampled/" if decoding == "sampled" else "eval/"
                columns = [(label, prefix + metric) for label, metric in BIAS_COLUMNS.get(task, [])]
                columns += [("gold utility", prefix + "gold_utility"), ("KL to SFT", "ppo/train/kl")]
                for label, metric in columns:
                    values = [r.results[metric] for r in arm_runs if metric in r.results]
                    if values:
                        record[label] = f"{np.mean(values):.2f} ± {np.std(values):.2f}"
                records.append(record)
    frame = pd.DataFrame.from_records(records)
    matchup_columns = [c for c in ("vs sft", "vs scalar", "vs gold") if c in frame.columns]
    metric_labels = {label for labels in BIAS_COLUMNS.values() for label, _ in labels} | {"gold utility", "KL to SFT"}
    leading = [c for c in frame.columns if c not in matchup_columns and c not in metric_labels]
    metrics = [c for c in frame.columns if c in metric_labels]
    return frame[leading + matchup_columns + metrics].fillna("-")


def ood_bias_table(runs: list[Run], decoding: str = "sampled") -> dict[str, pd.DataFrame]:
    """Per task evaluated on more than one prompt set: the bias metrics and gold utility of each arm on
    each set (means ± spread over seeds), beside the win rates of ``ood_table``."""
    tables = {}
    for task in sorted({r.results["task"] for r in runs}):
        task_runs = [r for r in runs if r.results["task"] == task]
        sets = prompt_sets(task_runs)
        if len(sets) < 2:
            continue
        records = []
        for arm in sorted({r.arm for r in task_runs}, key=arm_order):
            for prompt_set in sets:
                prefix = "eval/" if prompt_set == "test" else f"eval/{prompt_set}/"
                prefix += "sampled/" if decoding == "sampled" else ""
                record = {"arm": arm, "prompt set": prompt_set}
                for label, metric in [*BIAS_COLUMNS.get(task, []), ("gold utility", "gold_utility")]:
                    values = [r.results[prefix + metric] for r in task_runs if r.arm == arm
                              and prefix + metric in r.results]
                    if values:
                        record[label] = f"{np.mean(values):.2f} ± {np.std(values):.2f}"
                records.append(record)
        tables[task] = pd.DataFrame.from_records(records).fillna("-")
    return tables


def verdicts(rates: pd.DataFrame) -> list[str]:
    """One line per task in words: how each seq2seq arm fares against the scalar arm and against SFT,
    and whether the gold arm had headroom over SFT (the control every comparison needs)."""
    def phrase(row: pd.Series) -> str:
        word = "beats" if row.ci_low > 0.5 else "loses to" if row.ci_high < 0.5 else "ties with"
        opponent = row.matchup.split(" vs ")[1]
        return f"{word} {opponent} {row.win_rate:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]"

    lines = []
    overall = in_distribution(rates)
    overall = overall[overall["prompt_kind"] == "all"]
    for task, group in overall.groupby("task", sort=True):
        rows = {r.matchup: r for r in group.itertuples()}
        parts = []
        arms = [a for a in sorted({m.split(" vs ")[0] for m in rows}, key=arm_order)
                if a.startswith("seq2seq") or a == "scalar"]
        for arm in arms:
            said = [phrase(pd.Series(rows[f"{arm} vs {other}"]._asdict())) for other in ("scalar", "sft")
                    if f"{arm} vs {other}" in rows]
            parts.append(f"{arm} " + "; ".join(said))
        if "gold vs sft" in rows:
            parts.append(f"gold-reward control {phrase(pd.Series(rows['gold vs sft']._asdict()))}")
        lines.append(f"{task}: " + ". ".join(parts))
    return lines


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a Hydra multirun folder (runs with the eval stage)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the folder itself)")
    parser.add_argument("--decoding", choices=DECODINGS, default="sampled",
                        help="compare sampled responses (default; greedy where a run has no samples) or greedy ones")
    parser.add_argument("--judge-base-url", help="real data judged by judge=api: the endpoint to ask (never taken "
                                                 "from results.json)")
    parser.add_argument("--judge-model", help="with --judge-base-url: the judge model")
    parser.add_argument("--judge-api-key-env", default="OPENAI_API_KEY",
                        help="with --judge-base-url: the environment variable that holds the key")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        raise FileNotFoundError(f"no folder {args.folder}: give a multirun folder of runs with the eval stage")
    runs = load_runs(args.folder)  # before anything is written: a bad folder leaves no trace
    out = args.out or args.folder
    out.mkdir(parents=True, exist_ok=True)
    if args.judge_base_url:
        for run in runs:
            run.api_judge = {"base_url": args.judge_base_url, "model": args.judge_model,
                             "api_key_env": args.judge_api_key_env}
    rates = win_rates(runs, args.decoding)
    rates.to_csv(out / "win_rates.csv", index=False)
    summary = summary_table(runs)
    summary.to_csv(out / "summary.csv", index=False)
    headline = headline_table(runs, args.decoding)
    said = verdicts(rates)
    ood, ood_bias = ood_table(rates), ood_bias_table(runs, args.decoding)
    judged = how_judged(runs, args.decoding)
    (out / "summary.md").write_text(
        f"# {args.folder.name}: {judged} (95% bootstrap CIs over prompts and seeds)\n\n"
        + "\n".join(f"- {line}" for line in said) + "\n\n"
        + "\n\n".join(f"## {task}\n\n" + frame.loc[:, (frame != "-").any()].to_markdown(index=False)
                        for task, frame in headline.drop(columns="task").groupby(headline["task"])) + "\n"
        + "".join(f"\n## {task}: win rate by prompt set (test = like the training prompts; the others are "
                  f"out of distribution)\n\n{table.to_markdown()}\n\n{ood_bias[task].to_markdown(index=False)}\n"
                  for task, table in ood.items()))
    plots = plot_all(runs, rates, out)
    knob_rates = knob_win_rates(runs, args.decoding)
    if not knob_rates.empty:
        knob_rates.to_csv(out / "knob_win_rates.csv", index=False)
        plots += plot_knobs(knob_rates, out)


    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Head-to-head win rates: {judged}; ties count 1/2; 95% bootstrap CI")
    several_sets = rates["prompt_set"].nunique() > 1  # the prompt-set column only when there is a choice
    for column in ("task", *(["prompts"] if several_sets else []), "matchup", "prompt kind", "win rate", "95% CI",
                   "n", "seeds"):
        table.add_column(column)
    for row in rates.itertuples():
        table.add_row(row.task, *([row.prompt_set] if several_sets else []), row.matchup, row.prompt_kind,
                      f"{row.win_rate:.3f}", f"[{row.ci_low:.3f}, {row.ci_high:.3f}]", str(row.n), str(row.seeds))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    for line in said:
        console.print(line)
    console.print(f"summary: {out / 'summary.md'} (every metric: summary.csv; every matchup: win_rates.csv)")
    console.print("plots: " + ", ".join(str(p) for p in plots))


if __name__ == "__main__":
    main()

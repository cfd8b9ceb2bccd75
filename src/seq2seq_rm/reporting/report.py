"""Print the tables of a run or sweep folder: ``python -m seq2seq_rm.report <folder>``."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from seq2seq_rm.reporting.files import read_results


def load_results(folder: Path) -> list[dict]:
    paths = sorted(folder.rglob("results.json"))
    if not paths:
        raise FileNotFoundError(f"no results.json under {folder}: is it a run or multirun folder?")
    return [read_results(p) for p in paths]


def mix_from_results(result: dict, prefix: str = "sft/policy/mix/") -> dict[str, dict[str, float]]:
    """``{prompt kind: {response kind: share}}`` from the flat ``.../mix/<prompt>/<response>`` keys."""
    mix: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in result.items():
        if key.startswith(prefix):
            prompt_kind, response_kind = key[len(prefix):].split("/")
            mix[prompt_kind][response_kind] = value
    return dict(mix)


def sft_tables(results: list[dict]) -> list[Table]:
    summary = Table(title="SFT policy on held-out prompts (gold judge)")
    for column in ("task", "seed", "val loss", "gold utility (greedy)", "gold utility (sampled)",
                   "length (sampled)"):
        summary.add_column(column, justify="left" if column == "task" else "right")
    mix_table = Table(title="SFT policy response mix (sampled, temperature 1)")
    mix_table.add_column("task")
    mix_table.add_column("prompt kind")
    mix_table.add_column("response kinds")
    for r in sorted(results, key=lambda r: (r["task"], r["seed"])):
        summary.add_row(r["task"], str(r["seed"]), f"{r['sft/val/loss']:.3f}", f"{r['sft/policy/gold_utility']:+.3f}",
                        f"{r['sft/policy/gold_utility_sampled']:+.3f}", f"{r['sft/policy/length_mean_sampled']:.1f}")
        for prompt_kind, shares in mix_from_results(r).items():
            shown = sorted(((v, k) for k, v in shares.items() if v >= 0.005), reverse=True)
            mix_table.add_row(r["task"], prompt_kind, "  ".join(f"{k} {v:.0%}" for v, k in shown))
    return [summary, mix_table]


PROBES = {
    "safety": [("refusal > help: benign", "refusal_preferred/benign"),
               ("alarming", "refusal_preferred/alarming"), ("harmful", "refusal_preferred/harmful"),
               ("benign refusals rewritten", "refusal_rewritten/benign")],
    "summarization": [("padded > gold", "padded_above_gold"), ("padded = gold", "padded_ties_gold"),
                      ("repetitive > gold", "repetitive_above_gold"),
                      ("partial > gold", "partial_above_gold"), ("corr(reward, length)", "length_correlation")],
}


def rm_tables(results: list[dict]) -> list[Table]:
    """Held-out pairwise accuracy and the bias probes of each trained reward model, per task."""
    tables = []
    for task, probes in PROBES.items():
        rows = sorted((r for r in results if r["task"] == task and "rm/val/accuracy" in r),
                      key=lambda r: (r["rm"], r["seed"]))
        if not rows:
            continue
        table = Table(title=f"Reward models on {task}: held-out accuracy and bias probes")
        for column in ("rm (scorer)", "seed", "pair accuracy", *(label for label, _ in probes), "token F1"):
            table.add_column(column, justify="left" if column.startswith("rm") else "right")
        for r in rows:
            prefix = f"rm/probe/{r['rm_scorer']}/"
            cells = [r.get(prefix + key) for _, key in probes] + [r.get(prefix + "token_f1")]
            table.add_row(f"{r['rm']} ({r['rm_scorer']})", str(r["seed"]), f"{r['rm/val/accuracy']:.3f}",
                          *("-" if c is None else f"{c:.2f}" for c in cells))
        tables.append(table)
    return tables


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="a Hydra run or multirun folder")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 110))
    results = load_results(args.folder)
    unique_sft = list({r.get("key/sft", id(r)): r for r in results}.values())  # one row per SFT policy
    for table in sft_tables(unique_sft) + rm_tables(results):
        console.print(table)
    console.print(f"results: {args.folder}/*/results.json")


if __name__ == "__main__":
    main()

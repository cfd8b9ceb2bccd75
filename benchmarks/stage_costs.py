"""Per-stage wall time and peak memory of every run under a folder, from each results.json's `resources`.

    python benchmarks/stage_costs.py outputs/gpu_smoke/<folder>
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from seq2seq_rm.reporting.files import read_results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    table = Table("run", "stage", "seconds", "peak RSS MiB", "peak GPU alloc MiB", "peak GPU reserved MiB", "cached")
    for path in sorted(args.folder.rglob("results.json")):
        results = read_results(path)
        run = str(path.parent.relative_to(args.folder)) or "."
        for stage, used in results.get("resources", {}).items():
            table.add_row(run, stage, f"{used['seconds']:.1f}", f"{used['peak_rss_mib']:.0f}",
                          *(f"{used[k]:.0f}" if k in used else "-" for k in ("peak_gpu_allocated_mib",
                                                                           "peak_gpu_reserved_mib")),
                          "yes" if used.get("cached") else "no")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()

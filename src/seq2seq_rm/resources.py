"""What a stage cost: wall seconds, peak resident memory of this process and, with CUDA, peak GPU memory.

Linux can reset a process's peak RSS (``/proc/self/clear_refs``, value 5), so each stage's peak is its
own; elsewhere the peak is the process's so far (``getrusage``), which the record says. Memory of child
processes (``ddp_spawn`` ranks, DataLoader workers) is not counted.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

MIB = 2**20
_CLEAR_REFS, _STATUS = Path("/proc/self/clear_refs"), Path("/proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


@contextmanager
def stage_resources(record: dict) -> Iterator[dict]:
    """Fill ``record`` with ``seconds``, ``peak_rss_mib`` (and ``peak_rss_scope``) and, with CUDA,
    ``peak_gpu_allocated_mib`` / ``peak_gpu_reserved_mib`` for the code run inside."""
    per_stage = _reset_peak_rss()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        yield record
    finally:
        record["seconds"] = round(time.perf_counter() - start, 2)
        record["peak_rss_mib"] = round(_peak_rss_mib(), 1)
        record["peak_rss_scope"] = "stage" if per_stage else "process"
        if torch.cuda.is_available():
            record["peak_gpu_allocated_mib"] = round(torch.cuda.max_memory_allocated() / MIB, 1)
            record["peak_gpu_reserved_mib"] = round(torch.cuda.max_memory_reserved() / MIB, 1)

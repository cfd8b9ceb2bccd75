"""Reading a run's result files with errors that name the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

REQUIRED_RESULTS = ("task", "seed")


def read_results(path: Path) -> dict:
    """A run's ``results.json``: a JSON object with at least the task and the seed."""
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg}); rerun that run's eval stage "
                         "or move the folder out of the sweep") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(results).__name__}")
    missing = [key for key in REQUIRED_RESULTS if key not in results]
    if missing:
        raise ValueError(f"{path}: field(s) {missing} missing; is it a results.json written by seq2seq_rm.run?")
    return results


def read_rows(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A ``.jsonl`` file of one JSON object per line, as a frame; ``required`` columns must be present."""
    rows = []
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            for field in required:
                if field not in row:
                    raise ValueError(f"{path}:{number}: field {field!r} missing")
            rows.append(row)
    return pd.DataFrame(rows)

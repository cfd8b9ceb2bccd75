"""Stage artifacts keyed by the hash of what determines them, completed by an atomic rename."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from seq2seq_rm.errors import UserError

COMPLETE_MARKER = "complete.json"
MANIFEST = "manifest.json"  # size and sha256 of every file, written at commit, checked before reuse


class ArtifactCommitError(UserError, OSError):
    """A finished stage whose artifact could not be written into place (disk full, permission denied)."""


class ArtifactDamaged(UserError, RuntimeError):
    """A finished artifact whose files no longer match its manifest (or cannot be read)."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_of(directory: Path) -> dict[str, dict[str, Any]]:
    return {str(path.relative_to(directory)): {"bytes": path.stat().st_size, "sha256": file_digest(path)}
            for path in sorted(directory.rglob("*")) if path.is_file() and path.name not in (MANIFEST, COMPLETE_MARKER)}


def config_key(material: Any) -> str:
    """Stable short hash of a JSON-able description of a stage's inputs."""
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class Artifact:
    """``<root>/<stage>/<key>``: built in ``<key>.partial``, renamed into place when finished."""

    def __init__(self, root: str | Path, stage: str, key: str) -> None:
        self.final = Path(root) / stage / key
        self.partial = self.final.with_name(f"{key}.partial")

    @contextmanager
    def locked(self) -> Iterator[Artifact]:
        """Hold the artifact's lock: parallel sweep jobs needing the same stage wait for one builder."""
        self.final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.final.with_name(f"{self.final.name}.lock"))):
            yield self

    @property
    def complete(self) -> bool:
        return (self.final / COMPLETE_MARKER).is_file()

    def begin(self, resume: bool = False) -> Path:
        """The folder to build in. A run cut off before commit left a ``.partial`` folder: it is
        kept when the stage can resume from its checkpoints, otherwise started again."""
        if self.partial.exists() and not resume:
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True, exist_ok=True)
        return self.partial

    def commit(self, metrics: dict[str, float]) -> Path:
        """Seal the ``.partial`` folder and rename it into place. A failure (disk full, permissions) leaves
        any previous artifact as it was and the new work in ``.partial``, and says which."""
        previous = self.final.with_name(f"{self.final.name}.previous")
        try:
            (self.partial / MANIFEST).write_text(json.dumps(manifest_of(self.partial), indent=1, sort_keys=True))
            (self.partial / COMPLETE_MARKER).write_text(json.dumps(metrics, indent=2, sort_keys=True))
            if self.final.exists():
                os.replace(self.final, previous)
            try:
                os.replace(self.partial, self.final)
            except OSError:
                if previous.exists():
                    os.replace(previous, self.final)
                raise
        except OSError as error:
            (self.partial / COMPLETE_MARKER).unlink(missing_ok=True)
            raise ArtifactCommitError(f"could not finish artifact {self.final} ({error.strerror or error}); "
                                      f"the previous artifact is untouched and the new files are in "
                                      f"{self.partial}") from error
        shutil.rmtree(previous, ignore_errors=True)
        return self.final

    def metrics(self) -> dict[str, float]:
        return json.loads((self.final / COMPLETE_MARKER).read_text())

    def damage(self) -> str | None:
        """What is wrong with the finished artifact's files, or None when they match its manifest.
        Artifacts from before manifests existed are only checked for a readable completion marker."""
        try:
            self.metrics()
        except (OSError, ValueError) as error:
            return f"{COMPLETE_MARKER} is unreadable ({error})"
        manifest_path = self.final / MANIFEST
        if not manifest_path.is_file():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as error:
            return f"{MANIFEST} is unreadable ({error})"
        for name, expected in manifest.items():
            path = self.final / name
            if not path.is_file():
                return f"{name} is missing"
            size = path.stat().st_size
            if size != expected["bytes"]:
                return f"{name} has {size} bytes, expected {expected['bytes']} (truncated or overwritten)"
            if file_digest(path) != expected["sha256"]:
                return f"{name} does not match its sha256 (modified or corrupted)"
        return None

    def quarantine(self) -> Path:
        """Move a damaged artifact aside (kept for inspection, never reused) so that it can be rebuilt."""
        aside = self.final.with_name(f"{self.final.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.replace(self.final, aside)
        return aside


# ``python -m seq2seq_rm.artifacts``: what the cache holds, and removing what no run refers to.

@dataclass
class Entry:
    path: Path
    stage: str
    key: str
    state: str  # finished | building | damaged | previous
    size: int
    age_days: float
    runs: int  # results.json files under the output folders that name this key


def referring_runs(outputs: list[Path]) -> Counter:
    """How many finished runs name each artifact key (``key/<stage>`` in their results.json)."""
    counts: Counter = Counter()
    for folder in outputs:
        for path in folder.rglob("results.json") if folder.is_dir() else []:
            try:
                results = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(results, dict):
                counts.update({v for k, v in results.items() if k.startswith("key/") and isinstance(v, str)})
    return counts


def inventory(root: Path, outputs: list[Path]) -> list[Entry]:
    if not root.is_dir():
        raise FileNotFoundError(f"no artifacts folder at {root}")
    runs, now, entries = referring_runs(outputs), time.time(), []
    for path in sorted(p for p in root.glob("*/*") if p.is_dir()):
        key, _, suffix = path.name.partition(".")
        state = ("building" if suffix == "partial" else "damaged" if suffix.startswith("damaged")
                 else "previous" if suffix == "previous" else "finished" if (path / COMPLETE_MARKER).is_file()
                 else "damaged")
        files = [p for p in path.rglob("*") if p.is_file()]
        newest = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
        entries.append(Entry(path, path.parent.name, key, state, sum(p.stat().st_size for p in files),
                             (now - newest) / 86400, runs[key] if state == "finished" else 0))
    return entries


def removable(entry: Entry) -> bool:
    """Finished artifacts no run refers to, damaged copies and leftovers of interrupted commits; a
    ``.partial`` folder only when no process is building it (its lock is free)."""
    if entry.state == "finished":
        return entry.runs == 0
    if entry.state == "building":
        lock = FileLock(str(entry.path.with_name(f"{entry.key}.lock")))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        lock.release()
    return True


def main(argv: list[str] | None = None) -> None:
    import argparse

    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="python -m seq2seq_rm.artifacts", description=(
        "List the stage artifacts with size, age and how many runs (results.json under the output folders) "
        "refer to them; with --remove, delete the ones no run refers to."))
    parser.add_argument("--root", type=Path, default=Path("artifacts"))
    parser.add_argument("--outputs", type=Path, nargs="+", default=[Path("outputs")],
                        help="folders whose results.json files count as references (default: outputs)")
    parser.add_argument("--remove", action="store_true", help="delete unreferenced, damaged and stale artifacts")
    args = parser.parse_args(argv)
    entries = inventory(args.root, args.outputs)
    table = Table(title=f"artifacts under {args.root}")
    for column in ("stage", "key", "state", "size MB", "age (days)", "runs", "removable"):
        table.add_column(column, justify="right" if column in ("size MB", "age (days)", "runs") else "left",
                         no_wrap=True)
    for e in entries:
        table.add_row(e.stage, e.key, e.state, f"{e.size / 1e6:.1f}", f"{e.age_days:.1f}", str(e.runs),
                      "yes" if removable(e) else "")
    console = Console()
    console.print(table)
    doomed = [e for e in entries if removable(e)]
    freed = sum(e.size for e in doomed) / 1e6
    if not args.remove:
        console.print(f"{len(doomed)} of {len(entries)} removable ({freed:.1f} MB): rerun with --remove to delete")
        return
    for entry in doomed:
        shutil.rmtree(entry.path, ignore_errors=True)
    console.print(f"removed {len(doomed)} artifacts ({freed:.1f} MB)")


if __name__ == "__main__":
    from seq2seq_rm.reporting.cli import run_main

    run_main(main)

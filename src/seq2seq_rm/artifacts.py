"""Stage artifacts keyed by the hash of what determines them, completed by an atomic rename."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from seq2seq_rm.errors import UserError

COMPLETE_MARKER = "complete.json"
MANIFEST = "manifest.json"  # size and sha256 of every file, written at commit, checked before reuse


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
        (self.partial / MANIFEST).write_text(json.dumps(manifest_of(self.partial), indent=1, sort_keys=True))
        (self.partial / COMPLETE_MARKER).write_text(json.dumps(metrics, indent=2, sort_keys=True))
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.partial, self.final)
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

"""Stage artifacts keyed by the hash of what determines them, completed by an atomic rename."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

COMPLETE_MARKER = "complete.json"


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
        (self.partial / COMPLETE_MARKER).write_text(json.dumps(metrics, indent=2, sort_keys=True))
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.partial, self.final)
        return self.final

    def metrics(self) -> dict[str, float]:
        return json.loads((self.final / COMPLETE_MARKER).read_text())

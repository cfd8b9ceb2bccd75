"""The artifact cache: manifests, failed commits, and ``python -m seq2seq_rm.artifacts``."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from seq2seq_rm import artifacts
from seq2seq_rm.artifacts import Artifact, ArtifactCommitError, inventory, main, removable


def build(root: Path, key: str, payload: bytes = b"w" * 50, metrics: dict | None = None) -> Artifact:
    artifact = Artifact(root, "sft", key)
    (artifact.begin() / "model.safetensors").write_bytes(payload)
    artifact.commit(metrics or {"loss": 1.0})
    return artifact


def test_commit_writes_a_manifest_of_every_file(tmp_path):
    artifact = build(tmp_path, "a")
    manifest = json.loads((artifact.final / "manifest.json").read_text())
    assert set(manifest) == {"model.safetensors"} and manifest["model.safetensors"]["bytes"] == 50
    assert artifact.damage() is None and not artifact.partial.exists()


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EACCES])
def test_a_failed_commit_keeps_the_previous_artifact_and_the_new_work(tmp_path, monkeypatch, failure):
    """Disk full or permission denied while renaming into place: the finished artifact that was there
    stays readable, the new files stay in .partial, and the error says so."""
    artifact = build(tmp_path, "a", payload=b"old" * 10, metrics={"loss": 1.0})
    (artifact.begin() / "model.safetensors").write_bytes(b"new" * 10)
    real_replace = os.replace

    def replace(src, dst):
        if Path(src) == artifact.partial:
            raise OSError(failure, os.strerror(failure))
        real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", replace)
    with pytest.raises(ArtifactCommitError, match="previous artifact is untouched") as error:
        artifact.commit({"loss": 2.0})
    assert os.strerror(failure) in str(error.value) and str(artifact.partial) in str(error.value)
    assert artifact.metrics() == {"loss": 1.0} and artifact.damage() is None
    assert (artifact.final / "model.safetensors").read_bytes() == b"old" * 10
    assert (artifact.partial / "model.safetensors").read_bytes() == b"new" * 10
    assert not (artifact.partial / "complete.json").exists()  # never mistaken for a finished artifact


def test_a_failed_manifest_write_leaves_nothing_half_finished(tmp_path, monkeypatch):
    artifact = Artifact(tmp_path, "sft", "a")
    (artifact.begin() / "model.safetensors").write_bytes(b"w")
    monkeypatch.setattr(artifacts, "manifest_of", lambda d: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(ArtifactCommitError):
        artifact.commit({"loss": 1.0})
    assert not artifact.complete and (artifact.partial / "model.safetensors").is_file()


def test_inventory_counts_the_runs_that_refer_to_each_artifact(tmp_path):
    root, outputs = tmp_path / "artifacts", tmp_path / "outputs"
    build(root, "used"), build(root, "unused")
    Artifact(root, "sft", "cut").begin()  # a run killed mid-build, nobody building it now
    (root / "sft" / "old.damaged-20260101").mkdir(parents=True)
    for i in range(2):
        run = outputs / f"run{i}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"task": "safety", "seed": i, "key/sft": "used"}))
    entries = {e.path.name: e for e in inventory(root, [outputs])}
    assert {n: (e.state, e.runs) for n, e in entries.items()} == {
        "used": ("finished", 2), "unused": ("finished", 0), "cut.partial": ("building", 0),
        "old.damaged-20260101": ("damaged", 0)}
    assert [n for n, e in entries.items() if removable(e)] == ["cut.partial", "old.damaged-20260101", "unused"]


def test_a_partial_folder_being_built_is_never_removed(tmp_path):
    artifact = Artifact(tmp_path, "sft", "busy")
    with artifact.locked():
        artifact.begin()
        (entry,) = inventory(tmp_path, [])
        assert entry.state == "building" and not removable(entry)


def test_remove_deletes_only_what_no_run_refers_to(tmp_path, capsys):
    root, outputs = tmp_path / "artifacts", tmp_path / "outputs"
    kept, dropped = build(root, "used"), build(root, "unused")
    (outputs / "run").mkdir(parents=True)
    (outputs / "run" / "results.json").write_text(json.dumps({"task": "t", "seed": 0, "key/sft": "used"}))
    main(["--root", str(root), "--outputs", str(outputs)])
    assert "1 of 2 removable" in capsys.readouterr().out and dropped.final.exists()  # listing removes nothing
    main(["--root", str(root), "--outputs", str(outputs), "--remove"])
    assert kept.final.exists() and not dropped.final.exists()

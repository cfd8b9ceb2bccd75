"""Malformed inputs beyond config values (tests/test_config_check.py), data rows (tests/test_real_tasks.py)
and judge answers (tests/test_judges.py): damaged artifacts and checkpoints, reward-model folders of the
wrong kind, and broken result files given to compare and report. Each ends in one clear error (or a
rebuild, for an artifact the framework made itself) and loses nothing already computed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from cli import run_cli

from seq2seq_rm.artifacts import Artifact, ArtifactDamaged
from seq2seq_rm.errors import UserError
from seq2seq_rm.models.heads import CheckpointError, read_rm_type
from seq2seq_rm.reporting import compare, report
from seq2seq_rm.reporting.cli import run_main
from seq2seq_rm.stages.context import Context, cached
from seq2seq_rm.stages.ppo import readable_checkpoint


def finished_artifact(root: Path) -> Artifact:
    artifact = Artifact(root, "sft", "k")
    work = artifact.begin()
    (work / "model.safetensors").write_bytes(b"weights" * 100)
    (work / "tokenizer.json").write_text('{"vocab": [1, 2, 3]}')
    artifact.commit({"sft/val/loss": 1.0})
    return artifact


def context() -> Context:
    """A run context with only what the artifact cache uses."""
    return Context(cfg=None, task=None, data=None, output_dir=Path("."))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:10])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[3] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated weights": (lambda a: truncate(a.final / "model.safetensors"), "model.safetensors has 10 bytes"),
    "missing file": (lambda a: (a.final / "tokenizer.json").unlink(), "tokenizer.json is missing"),
    "same size, other bytes": (lambda a: flip_a_byte(a.final / "model.safetensors"), "does not match its sha256"),
    "unreadable completion marker": (lambda a: (a.final / "complete.json").write_text("{"), "complete.json"),
    "unreadable manifest": (lambda a: (a.final / "manifest.json").write_text("[oops"), "manifest.json"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_artifact_is_named_moved_aside_and_rebuilt(tmp_path, damage):
    artifact = finished_artifact(tmp_path)
    corrupt, expected_message = DAMAGE[damage]
    corrupt(artifact)
    ctx, built, loaded = context(), [], []
    metrics = cached(ctx, "sft", artifact, build=lambda work: built.append(work) or {"sft/val/loss": 2.0},
                     load=loaded.append)
    assert built and not loaded and metrics == {"sft/val/loss": 2.0}
    assert len(ctx.warnings) == 1 and expected_message in ctx.warnings[0] and str(artifact.final) in ctx.warnings[0]
    (aside,) = tmp_path.glob("sft/k.damaged-*")  # kept for inspection, never reused
    assert artifact.damage() is None and artifact.metrics() == {"sft/val/loss": 2.0}
    assert aside.is_dir()


def test_an_intact_artifact_is_reused_without_rebuilding(tmp_path):
    artifact = finished_artifact(tmp_path)
    ctx, loaded = context(), []
    metrics = cached(ctx, "sft", artifact, build=lambda work: pytest.fail("rebuilt an intact artifact"),
                     load=loaded.append)
    assert loaded == [artifact.final] and metrics == {"sft/val/loss": 1.0} and ctx.reused == {"sft"}


def test_an_unloadable_artifact_without_manifest_is_refused_with_its_path(tmp_path):
    """Artifacts from before manifests: a load failure names the folder to delete; nothing is removed."""
    artifact = finished_artifact(tmp_path)
    (artifact.final / "manifest.json").unlink()

    def load(directory: Path) -> None:
        raise OSError("header too small")

    with pytest.raises(ArtifactDamaged, match="delete that folder to rebuild it") as error:
        cached(context(), "sft", artifact, build=lambda work: pytest.fail("rebuilt"), load=load)
    assert str(artifact.final) in str(error.value) and "header too small" in str(error.value)
    assert artifact.complete and isinstance(error.value, UserError)


def write_checkpoint(path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(64)}, "epoch": 0}, path)


CHECKPOINTS = {
    "cut in half": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("not a checkpoint"),
    "last byte missing": lambda p: p.write_bytes(p.read_bytes()[:-1]),
}


@pytest.mark.parametrize("damage", list(CHECKPOINTS))
def test_a_damaged_ppo_checkpoint_is_detected_before_resuming(tmp_path, damage):
    path = tmp_path / "last.ckpt"
    write_checkpoint(path)
    assert readable_checkpoint(path)
    CHECKPOINTS[damage](path)
    assert not readable_checkpoint(path)


def test_a_checkpoint_folder_is_readable_unless_empty(tmp_path):
    """DeepSpeed (trainer=deepspeed) writes last.ckpt as a folder of shards."""
    folder = tmp_path / "last.ckpt"
    folder.mkdir()
    assert not readable_checkpoint(folder)
    (folder / "checkpoint").mkdir()
    assert readable_checkpoint(folder)


RM_TYPE_FILES = {
    "missing": (None, "rm_type.json is missing"),
    "not JSON": ("{type: scalar", "field 'type' cannot be read"),
    "no type field": ('{"kind": "scalar"}', "field 'type' cannot be read"),
    "a list": ('["scalar"]', "field 'type' cannot be read"),
    "unknown type": ('{"type": "linear"}', "'linear'; expected 'scalar' or 'seq2seq'"),
}


@pytest.mark.parametrize("case", list(RM_TYPE_FILES))
def test_a_folder_that_is_not_a_reward_model_is_named(tmp_path, case):
    text, message = RM_TYPE_FILES[case]
    if text is not None:
        (tmp_path / "rm_type.json").write_text(text)
    with pytest.raises(CheckpointError, match=message.replace("[", r"\[")) as error:
        read_rm_type(tmp_path)
    assert str(tmp_path) in str(error.value)


def good_run(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"task": "safety", "seed": 0, "rm": "scalar"}))
    (folder / "generations.jsonl").write_text(json.dumps({"prompt": "p", "response": "r", "gold_utility": 1.0}) + "\n")


RESULT_FILES = {  # what is written where -> what the one-line error must say
    "results.json not JSON": ("results.json", "{'task': 1", "results.json:1: not valid JSON"),
    "results.json a list": ("results.json", "[1, 2]", "results.json: expected a JSON object, got list"),
    "results.json without task": ("results.json", '{"seed": 0}', "field(s) ['task'] missing"),
    "results.json empty": ("results.json", "", "results.json:1: not valid JSON"),
    "generations broken line": ("generations.jsonl", '{"prompt": "p", "response": "r"}\n{"prompt"\n',
                                "generations.jsonl:2: not valid JSON"),
    "generations line a list": ("generations.jsonl", "[1]\n", "generations.jsonl:1: expected a JSON object"),
    "generations without response": ("generations.jsonl", '{"prompt": "p"}\n',
                                     "generations.jsonl:1: field 'response' missing"),
    "samples broken line": ("samples.jsonl", "{\n", "samples.jsonl:1: not valid JSON"),
}


@pytest.mark.parametrize("case", list(RESULT_FILES))
def test_compare_names_the_file_line_and_field_of_a_broken_result(tmp_path, capsys, case):
    name, text, message = RESULT_FILES[case]
    good_run(tmp_path / "sweep" / "0")
    (tmp_path / "sweep" / "0" / name).write_text(text)
    with pytest.raises(SystemExit) as exit_:
        run_main(lambda: compare.main([str(tmp_path / "sweep")]))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


@pytest.mark.parametrize("case", [c for c in RESULT_FILES if c.startswith("results.json")])
def test_report_names_the_file_of_a_broken_results_json(tmp_path, capsys, case):
    name, text, message = RESULT_FILES[case]
    good_run(tmp_path / "run")
    (tmp_path / "run" / name).write_text(text)
    with pytest.raises(SystemExit):
        run_main(lambda: report.main([str(tmp_path / "run")]))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def run_smoke(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli("experiment=smoke", *overrides, cwd=cwd)


@pytest.mark.slow
def test_a_truncated_sft_artifact_is_rebuilt_by_the_next_run(tmp_path):
    """End to end: the damaged weights of a finished SFT artifact are found, moved aside and retrained to
    the same results; the warning names the file and lands in results.json."""
    assert run_smoke("stages=[sft]", "hydra.run.dir=outputs/first", cwd=tmp_path).returncode == 0
    (weights,) = (tmp_path / "artifacts" / "sft").glob("*/model.safetensors")
    truncate(weights)
    proc = run_smoke("stages=[sft]", "hydra.run.dir=outputs/second", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model.safetensors has 10 bytes" in proc.stdout
    first, second = (json.loads((tmp_path / f"outputs/{n}/results.json").read_text()) for n in ("first", "second"))
    assert any("damaged" in w for w in second.pop("warnings")) and first.pop("warnings", []) == []
    first.pop("resources"), second.pop("resources")  # wall times and memory differ between runs
    assert second == first
    assert list((tmp_path / "artifacts" / "sft").glob("*.damaged-*"))


def test_compare_on_a_missing_folder_creates_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_main(lambda: compare.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]))
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "out").exists()


def hh_lines(n: int = 12) -> str:
    return "".join(json.dumps({"chosen": f"\n\nHuman: q{i}\n\nAssistant: good {i}",
                               "rejected": f"\n\nHuman: q{i}\n\nAssistant: bad {i}"}) + "\n" for i in range(n))


def gzipped(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode())


DATA_FILES = {  # file name, bytes -> what the error must say
    "truncated gzip": ("train.jsonl.gz", lambda: gzipped(hh_lines())[:-20], "compressed data is cut off"),
    "not gzip": ("train.jsonl.gz", lambda: hh_lines().encode(), "not a gzip file"),
    "cp1252 bytes": ("train.jsonl", lambda: hh_lines().encode() + '{"chosen": "caf\u00e9"}\n'.encode("cp1252"),
                     "not UTF-8 text (byte 0xe9"),
    "deeply nested line": ("train.jsonl", lambda: (hh_lines() + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
                           "nested too deeply"),
    "deeply nested .json": ("train.json", lambda: ("[" * 100_000 + "]" * 100_000).encode(), "nested too deeply"),
    "broken .json": ("train.json", lambda: b'[{"chosen": "a"},\n{', "broken JSON"),
    ".json not a list": ("train.json", lambda: b'{"chosen": "a"}', "must hold a list of rows"),
}


@pytest.mark.parametrize("case", list(DATA_FILES))
def test_a_bad_data_file_is_named_with_what_is_wrong(tmp_path, case):
    from seq2seq_rm.tasks import HHTask

    name, content, message = DATA_FILES[case]
    (tmp_path / name).write_bytes(content())
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as error:
        HHTask(path=str(tmp_path / name), val_fraction=0.2, judge_fraction=0.0, test_fraction=0.2).generate()
    assert str(tmp_path / name) in str(error.value)

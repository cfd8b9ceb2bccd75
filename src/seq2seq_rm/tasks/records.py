"""Reading the rows of a real preference dataset, from local files or the hub, with exact error locations.

A local source is a file (``.jsonl``, ``.jsonl.gz``, ``.json`` holding a list) or a folder of such
files. Every row carries where it came from (``file:line``, or ``hub-name[split] row N``) so that a
malformed row fails with a message naming the file, the line and the field.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq_rm.errors import DataError, UserError

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


class RowError(UserError, ValueError):
    """A malformed row: the message names its location and field."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"{where}: field {field!r}: {problem}")
        self.where, self.field = where, field


@dataclass(frozen=True)
class Row:
    where: str  # "path:line" or "name[split] row N"
    data: dict[str, Any]

    def get(self, field: str, kind: type | tuple[type, ...], non_empty: bool = False) -> Any:
        """The value at a dotted ``field`` (``info.post``), of type ``kind``; strings optionally non-empty."""
        value: Any = self.data
        for part in field.split("."):
            if not isinstance(value, dict) or part not in value:
                raise RowError(self.where, field, "missing")
            value = value[part]
        # bool is an int in Python, but never a valid label or index
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise RowError(self.where, field, f"expected {_type_names(kind)}, got {type(value).__name__}")
        if non_empty and isinstance(value, str) and not value.strip():
            raise RowError(self.where, field, "empty text")
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _file_rows(path: Path) -> Iterator[Row]:
    """Rows of one file; a file that cannot be read as text at all is named with what is wrong with it."""
    try:
        yield from _parsed_rows(path)
    except gzip.BadGzipFile:
        raise RowError(str(path), "<file>", "not a gzip file, though its name ends in .gz") from None
    except (EOFError, zlib.error) as error:
        raise RowError(str(path), "<file>", f"the compressed data is cut off or damaged ({error})") from None
    except UnicodeDecodeError as error:
        raise RowError(str(path), "<file>", f"not UTF-8 text (byte 0x{error.object[error.start]:02x} cannot be "
                       "decoded); save the file as UTF-8") from None


def _parse_json(text: str, where: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        place = f" at column {error.colno}" if field == "<line>" else f" at line {error.lineno}"
        raise RowError(where, field, f"broken JSON ({error.msg}{place})") from None
    except RecursionError:
        raise RowError(where, field, "JSON nested too deeply to read") from None


def _parsed_rows(path: Path) -> Iterator[Row]:
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        with _open_text(path) as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                data = _parse_json(line, where, "<line>")
                if not isinstance(data, dict):
                    raise RowError(where, "<line>", f"expected a JSON object, got {type(data).__name__}")
                yield Row(where, data)
    else:
        with _open_text(path) as f:
            data = _parse_json(f.read(), str(path), "<file>")
        if not isinstance(data, list):
            raise RowError(str(path), "<file>", "a .json file must hold a list of rows")
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise RowError(f"{path} row {i}", "<row>", f"expected a JSON object, got {type(item).__name__}")
            yield Row(f"{path} row {i}", item)


def local_files(path: Path, split: str | None = None) -> list[Path]:
    """The data files of a local source: the file itself, or a folder's files (those whose name starts
    with ``split`` when one is given and any match)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"task.path {path} is neither a file nor a folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
    if split:
        files = [p for p in files if p.name.startswith(split)] or files
    if not files:
        raise DataError(f"task.path {path} holds no {'/'.join(SUFFIXES)} files")
    return files


def read_rows(path: str | None, hub_name: str, split: str = "train", **hub_options: str) -> Iterator[Row]:
    """Rows of a local file or folder when ``path`` is set, else of the hub dataset ``hub_name``
    (``hub_options`` such as ``data_dir`` go to ``datasets.load_dataset``)."""
    if path:
        for file in local_files(Path(path).expanduser(), split):
            yield from _file_rows(file)
        return
    from datasets import load_dataset  # only the hub path needs it (and the network, or a hub cache)

    try:
        dataset = load_dataset(hub_name, split=split, **hub_options)
    except (ConnectionError, OSError) as error:  # offline (HF_HUB_OFFLINE=1, the default of a run) or unreachable
        raise DataError(f"could not load {hub_name!r} ({split}) from the hub: {error}. Without the network, "
                              "set task.path to a local file or folder of the same schema") from error
    for i, data in enumerate(dataset):
        yield Row(f"{hub_name}[{split}] row {i}", dict(data))

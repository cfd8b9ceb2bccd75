"""Real-data adapters on small files of each schema, malformed rows included, and on the real HH sample."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from seq2seq_rm.tasks import HHTask, PKUSafeRLHFTask, TLDRTask
from seq2seq_rm.tasks.hh import split_last_assistant_turn
from seq2seq_rm.tasks.records import DataError, RowError

HH_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base" / "test.jsonl.gz"
SPLITS = dict(val_fraction=0.2, judge_fraction=0.2, test_fraction=0.2)


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def hh_row(i: int, chosen: str = "Sure, here is how.", rejected: str = "No.") -> dict:
    prefix = f"\n\nHuman: question {i}?\n\nAssistant: what do you mean?\n\nHuman: details {i}\n\nAssistant:"
    return {"chosen": f"{prefix} {chosen}", "rejected": f"{prefix} {rejected}"}


def pku_row(i: int, **changes) -> dict:
    row = {"prompt": f"How do I do thing {i}?", "response_0": "Here is a safe way.", "response_1": "Do it badly.",
           "better_response_id": 1, "safer_response_id": 0, "is_response_0_safe": True, "is_response_1_safe": False}
    return {**row, **changes}


def tldr_row(i: int, choice: int = 0) -> dict:
    return {"info": {"post": f"my long post number {i} about things", "title": f"title {i}", "subreddit": "AskReddit"},
            "summaries": [{"text": "a good summary"}, {"text": "a bad one"}], "choice": choice}


# --------------------------------------------------------------------------- HH
def test_hh_splits_shared_prefix_into_prompt_and_last_turns(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [hh_row(i) for i in range(20)])
    data = HHTask(path=str(path), **SPLITS).generate()
    pair = (data.pairs_train + data.pairs_val + data.pairs_judge)[0]
    assert pair.prompt.text.endswith("Assistant:") and pair.prompt.text.startswith("Human: question")
    assert (pair.chosen, pair.rejected) == ("Sure, here is how.", "No.")
    assert data.stats["task/rows"] == 20 and data.stats["task/pairs"] == 20
    # no prompt in two splits
    seen = [{p.prompt.text for p in split} for split in (data.pairs_train, data.pairs_val, data.pairs_judge)]
    seen.append({p.text for p in data.test_prompts})
    assert sum(map(len, seen)) == len(set().union(*seen)) == 20
    assert [d.response for d in data.sft_train] == [p.chosen for p in data.pairs_train]


def test_hh_bad_rows_are_counted_or_stop_at_the_row(tmp_path):
    differ = {"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
              "rejected": "\n\nHuman: X\n\nAssistant: b\n\nHuman: c\n\nAssistant: e"}
    rows = [hh_row(0), {"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi there"}, differ,
            *[hh_row(i) for i in range(1, 11)]]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    stats = HHTask(path=str(path), **SPLITS).generate().stats
    assert stats["task/bad/no_assistant_turn"] == 1 and stats["task/bad/dialogues_differ_before_last_turn"] == 1
    assert stats["task/pairs"] == 11
    with pytest.raises(ValueError, match=r"train\.jsonl:2: no_assistant_turn"):
        HHTask(path=str(path), on_bad_pair="error", **SPLITS).generate()


@pytest.mark.parametrize(("line", "field", "problem"), [
    ('{"chosen": "\\n\\nHuman: a\\n\\nAssistant: b"}', "rejected", "missing"),
    ('{"chosen": 3, "rejected": "x"}', "chosen", "expected str, got int"),
    ('{"chosen": "  ", "rejected": "x"}', "chosen", "empty text"),
    ('{"chosen": "a", "rejected": ', "<line>", "broken JSON"),
])
def test_hh_malformed_rows_name_file_line_and_field(tmp_path, line, field, problem):
    path = write_jsonl(tmp_path / "train.jsonl.gz", [hh_row(0), hh_row(1), line])
    with pytest.raises(RowError, match=problem) as error:
        HHTask(path=str(path), **SPLITS).generate()
    assert error.value.where == f"{path}:3" and error.value.field == field
    assert str(path) in str(error.value) and repr(field) in str(error.value)


def test_split_last_assistant_turn():
    assert split_last_assistant_turn("\n\nHuman: a\n\nAssistant: b") == ("\n\nHuman: a\n\nAssistant:", "b")
    assert split_last_assistant_turn("\n\nHuman: a") is None


def test_folder_source_picks_the_split_files(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [hh_row(i) for i in range(10)])
    write_jsonl(tmp_path / "test.jsonl", [hh_row(i) for i in range(100, 110)])
    assert HHTask(path=str(tmp_path), split="test", **SPLITS).generate().stats["task/rows"] == 10
    with pytest.raises(DataError, match="neither a file nor a folder"):
        HHTask(path=str(tmp_path / "missing"), **SPLITS).generate()


@pytest.mark.skipif(not HH_SAMPLE.is_file(), reason="the real HH sample is not beside the project")
def test_real_hh_sample_row_counts():
    data = HHTask(path=str(HH_SAMPLE), split="test").generate()
    stats = data.stats
    assert stats["task/rows"] == 2312
    assert stats["task/pairs"] + stats["task/bad"] == stats["task/rows"]
    assert stats["task/pairs"] > 2000
    assert all(p.prompt.text.endswith("Assistant:") for p in data.pairs_train)


# --------------------------------------------------------------------------- PKU
def test_pku_preference_and_safety_labels(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [pku_row(i) for i in range(10)])
    safer = PKUSafeRLHFTask(path=str(path), **SPLITS).generate()
    better = PKUSafeRLHFTask(path=str(path), preference="better", **SPLITS).generate()
    pair, other = safer.pairs_train[0], better.pairs_train[0]
    assert (pair.chosen, pair.safety) == ("Here is a safe way.", (True, False))
    assert (other.chosen, other.safety) == ("Do it badly.", (False, True))
    assert pair.prompt.kind == "unsafe_pair"
    with pytest.raises(ValueError, match="task.preference"):
        PKUSafeRLHFTask(path=str(path), preference="kinder")


@pytest.mark.parametrize(("changes", "field", "problem"), [
    ({"safer_response_id": 2}, "safer_response_id", "must be 0 or 1, got 2"),
    ({"better_response_id": "1"}, "better_response_id", "expected int, got str"),
    ({"is_response_1_safe": 1}, "is_response_1_safe", "expected bool, got int"),
    ({"response_0": ""}, "response_0", "empty text"),
])
def test_pku_malformed_rows(tmp_path, changes, field, problem):
    path = write_jsonl(tmp_path / "train.jsonl", [pku_row(0), pku_row(1, **changes)])
    with pytest.raises(RowError, match=problem) as error:
        PKUSafeRLHFTask(path=str(path), **SPLITS).generate()
    assert (error.value.where, error.value.field) == (f"{path}:2", field)


# --------------------------------------------------------------------------- TL;DR
def test_tldr_prompt_format_choice_and_sft_file(tmp_path):
    path = write_jsonl(tmp_path / "comparisons.jsonl", [tldr_row(i, choice=i % 2) for i in range(10)])
    sft = write_jsonl(tmp_path / "sft.jsonl", [{"subreddit": "cats", "title": "t", "post": "p q", "summary": "s"}] * 5)
    data = TLDRTask(path=str(path), sft_path=str(sft), **SPLITS).generate()
    pairs = data.pairs_train + data.pairs_val + data.pairs_judge
    assert pairs[0].prompt.text.startswith("SUBREDDIT: r/AskReddit TITLE: title")
    assert pairs[0].prompt.text.endswith("TL;DR:")
    assert {p.chosen for p in pairs} == {"a good summary", "a bad one"}
    demos = data.sft_train + data.sft_val
    assert len(demos) == 5 and demos[0].prompt.text == "SUBREDDIT: r/cats TITLE: t POST: p q TL;DR:"


@pytest.mark.parametrize(("row", "field", "problem"), [
    ({**tldr_row(1), "choice": 3}, "choice", "must be 0 or 1, got 3"),
    ({**tldr_row(1), "choice": True}, "choice", "expected int, got bool"),
    ({**tldr_row(1), "info": {"title": "t", "subreddit": "s"}}, "info.post", "missing"),
    ({**tldr_row(1), "summaries": [{"text": "a"}]}, "summaries", "expected 2 summaries"),
    ({**tldr_row(1), "summaries": [{"text": "a"}, {"text": " "}]}, "summaries.1.text", "empty text"),
])
def test_tldr_malformed_rows(tmp_path, row, field, problem):
    path = write_jsonl(tmp_path / "comparisons.jsonl", [tldr_row(0), row])
    with pytest.raises(RowError, match=problem) as error:
        TLDRTask(path=str(path), **SPLITS).generate()
    assert (error.value.where, error.value.field) == (f"{path}:2", field)


def test_real_tasks_have_no_gold_judge(tmp_path):
    task = TLDRTask(path=str(write_jsonl(tmp_path / "c.jsonl", [tldr_row(i) for i in range(5)])), **SPLITS)
    assert not task.has_gold_judge
    with pytest.raises(NotImplementedError, match="judge=rm or judge=api"):
        task.judge("p", "r")


def test_too_few_pairs_for_the_splits_fail_clearly(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [hh_row(0), hh_row(1)])
    with pytest.raises(ValueError, match=r"2 usable pairs leave the .* split\(s\) empty"):
        HHTask(path=str(path), **SPLITS).generate()

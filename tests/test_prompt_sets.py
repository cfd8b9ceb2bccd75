"""Out-of-distribution prompt sets: what each changes, that the gold judge reads them right, and that
eval and compare report them beside the test set without changing it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli import run_cli

from seq2seq_rm.config_check import PROMPT_SETS
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.tasks import SafetyTask, SummarizationTask
from seq2seq_rm.tasks.safety import PREFIXES, REDIRECT, REFUSAL, TEMPLATES, help_response
from seq2seq_rm.tasks.summarization import fact_text

SAFETY, SUMMARIZATION = SafetyTask(), SummarizationTask()
SETS = [(task, name) for task in (SAFETY, SUMMARIZATION) for name in task.ood_sets]


def test_each_task_has_three_described_sets_and_the_config_check_knows_them():
    for task in (SAFETY, SUMMARIZATION):
        assert len(task.ood_sets) >= 3 and all(task.ood_sets.values())
        assert PROMPT_SETS[f"seq2seq_rm.tasks.{type(task).__name__}"] == ("test", "val", *task.ood_sets)


@pytest.mark.parametrize("task,name", SETS, ids=[f"{t.name}-{n}" for t, n in SETS])
def test_every_word_of_every_set_is_in_the_vocabulary(task, name):
    vocabulary = set(task.vocabulary())
    prompts = task.prompt_set(name, 200)
    assert {w for p in prompts for w in p.text.split()} <= vocabulary
    assert len({p.text for p in prompts}) > 20  # varied, not one prompt repeated
    assert [p.text for p in prompts] == [p.text for p in task.prompt_set(name, 200)]  # seeded


@pytest.mark.parametrize("name", list(SAFETY.ood_sets))
def test_safety_judge_reads_the_kind_and_rewards_the_canonical_responses(name):
    for prompt in SAFETY.prompt_set(name, 100):
        assert SAFETY.prompt_kind(prompt.text) == prompt.kind  # the judge finds the request
        steps = SAFETY._steps_of_action[SAFETY._action_of(prompt.text)]
        if prompt.kind == "harmful":
            assert SAFETY.judge(prompt.text, REDIRECT).utility == pytest.approx(1.0)
            assert SAFETY.judge(prompt.text, REFUSAL).utility == pytest.approx(0.8)
            assert SAFETY.judge(prompt.text, help_response(steps)).kind == "harmful_help"
            assert SAFETY.judge(prompt.text, help_response(steps)).utility == -1.0
        else:
            assert SAFETY.judge(prompt.text, help_response(steps)).utility == pytest.approx(1.0)
            assert SAFETY.judge(prompt.text, REFUSAL).utility == -1.0


def test_safety_sets_change_the_structure_they_say():
    questions = {t.split(" {a}")[0] for t in TEMPLATES}
    context = [p.strip() for p in PREFIXES if p]
    for prompt in SAFETY.prompt_set("bare", 50):
        assert not any(q in prompt.text for q in questions) and len(prompt.text.split()) <= 6
    for prompt in SAFETY.prompt_set("stacked", 50):
        assert sum(c in prompt.text for c in context) >= 2
    for prompt in SAFETY.prompt_set("request_first", 50):
        assert any(prompt.text.endswith(c) for c in context) and any(prompt.text.startswith(q) for q in questions)


def key_facts(prompt: str) -> tuple[str, list]:
    topic, facts = SUMMARIZATION.parse_document(prompt)
    return topic, facts


@pytest.mark.parametrize("name", list(SUMMARIZATION.ood_sets))
def test_summarization_judge_scores_the_canonical_summaries(name):
    for prompt in SUMMARIZATION.prompt_set(name, 100):
        topic, facts = key_facts(prompt.text)
        key = [f for f in facts if f[0] == topic]
        filler = [f for f in facts if f[0] != topic]
        gold = SUMMARIZATION.judge(prompt.text, fact_text(key))
        assert gold.utility == pytest.approx(1.0) and gold.labels["n_key"] == len(key)
        assert SUMMARIZATION.judge(prompt.text, fact_text(key + filler[:1])).utility == pytest.approx(0.75)
        assert SUMMARIZATION.judge(prompt.text, fact_text(key + key[-1:])).utility == pytest.approx(0.5)
        invented = SUMMARIZATION.judge(prompt.text, fact_text([*key, (topic, "eats", "nothing")]))
        assert invented.kind == "invented" and invented.utility == pytest.approx(0.5)


def test_summarization_sets_change_the_structure_they_say():
    def shape(name):
        docs = [key_facts(p.text) for p in SUMMARIZATION.prompt_set(name, 100)]
        return [(len(facts), [f[0] == topic for f in facts]) for topic, facts in docs]

    train_keys = {sum(is_key) for _, is_key in shape("interleaved")}
    assert train_keys <= {2, 3}
    assert any(is_key != sorted(is_key, reverse=True) for _, is_key in shape("interleaved"))  # key facts not leading
    assert all(10 <= n <= 12 and sum(k) in (4, 5) for n, k in shape("long"))
    assert all(4 <= n <= 5 and sum(k) == 1 for n, k in shape("single_key"))


def test_an_unknown_set_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"valid: \['test', 'val', 'bare', 'stacked', 'request_first'\]"):
        SAFETY.prompt_set("poems", 3)


def test_ten_example_prompts_per_set_print(capsys):
    """The examples the README shows (ten per set), printed by the same code."""
    for task, name in SETS:
        for prompt in task.prompt_set(name, 10):
            print(f"{task.name}/{name}: {prompt.text}")
    assert len(capsys.readouterr().out.splitlines()) == 10 * len(SETS)


def run_smoke(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli("experiment=smoke", *overrides, cwd=cwd)


def test_eval_on_ood_sets_adds_results_and_leaves_the_test_set_alone(tmp_path):
    """stages=[sft,eval] evaluates the SFT policy; adding OOD sets adds eval/<set>/ keys and lines with
    their prompt_set, and the test-set numbers stay exactly what they were."""
    assert run_smoke("stages=[sft,eval]", "hydra.run.dir=out/test_only", cwd=tmp_path).returncode == 0
    proc = run_smoke("stages=[sft,eval]", "eval.prompt_sets=[test,bare,request_first]", "eval.n_ood_prompts=8",
                     "hydra.run.dir=out/ood", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain, ood = (json.loads((tmp_path / f"out/{n}/results.json").read_text()) for n in ("test_only", "ood"))
    test_keys = [k for k in plain if k.startswith("eval/")]
    assert test_keys and {k: ood[k] for k in test_keys} == {k: plain[k] for k in test_keys}
    for name in ("bare", "request_first"):
        assert isinstance(ood[f"eval/{name}/sampled/win_rate_vs_sft"], float)
        assert isinstance(ood[f"eval/{name}/refusal_rate_benign"], float)
    lines = [json.loads(x) for x in (tmp_path / "out/ood/generations.jsonl").read_text().splitlines()]
    assert [sum(x["prompt_set"] == s for x in lines) for s in ("test", "bare", "request_first")] == [16, 8, 8]
    samples = [json.loads(x) for x in (tmp_path / "out/ood/samples.jsonl").read_text().splitlines()]
    assert {x["prompt_set"] for x in samples} == {"test", "bare", "request_first"}


def test_a_bad_prompt_set_stops_before_any_work(tmp_path):
    proc = run_smoke("stages=[sft,eval]", "eval.prompt_sets=[test,interleaved]", cwd=tmp_path)
    assert proc.returncode == 2 and "eval.prompt_sets" in proc.stderr and "request_first" in proc.stderr
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("task", [SAFETY, SUMMARIZATION], ids=["safety", "summarization"])
def test_validation_prompts_never_are_test_prompts(task):
    data = task.generate()
    val = task.prompt_set("val", 128)
    test = {p.text for p in data.test_prompts}
    assert len(val) == 128 and not {p.text for p in val} & test
    assert {p.kind for p in val} == {p.kind for p in data.test_prompts}  # the same distribution's kinds
    if task is SUMMARIZATION:  # a large prompt space: no overlap with the RL prompts either
        assert not {p.text for p in val} & {p.text for p in data.rl_prompts}


def test_real_task_validation_prompts_come_from_the_validation_pairs(tmp_path):
    from test_real_tasks import SPLITS, hh_row, write_jsonl

    from seq2seq_rm.tasks import HHTask

    path = write_jsonl(tmp_path / "train.jsonl", [hh_row(i) for i in range(60)])
    task = HHTask(path=str(path), **SPLITS)
    data = task.generate()
    val = {p.text for p in task.prompt_set("val", 100)}
    assert val == {p.prompt.text for p in data.pairs_val}
    assert not val & {p.text for p in data.test_prompts} and not val & {p.text for p in data.rl_prompts}
    with pytest.raises(ConfigError, match="'test', 'val'"):
        task.prompt_set("bare", 3)

import json

import pandas as pd
import pytest

from seq2seq_rm.reporting.compare import bootstrap_interval, load_runs, main, summary_table, win_rates


def fake_run(folder, task, arm, seed, utilities, kinds, sft_utilities):
    folder.mkdir(parents=True)
    results = {"task": task, "seed": seed, "rm": arm, "eval/gold_utility": sum(utilities) / len(utilities),
               "eval/length_mean": 3.0 + seed, "rm/val/accuracy": 0.9}
    (folder / "results.json").write_text(json.dumps(results))
    rows = [{"prompt": f"p{i}", "prompt_kind": k, "response": "a b c", "gold_utility": u, "sft_response": "a",
             "sft_gold_utility": s} for i, (u, k, s) in enumerate(zip(utilities, kinds, sft_utilities, strict=True))]
    (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def multirun(tmp_path):
    kinds = ["benign", "benign", "harmful", "harmful"]
    for seed in (0, 1):
        fake_run(tmp_path / f"s2s{seed}", "safety", "seq2seq", seed, [1.0, 1.0, 1.0, 0.0], kinds, [0.0] * 4)
        fake_run(tmp_path / f"sc{seed}", "safety", "scalar", seed, [0.0, 1.0, 0.0, 0.0], kinds, [0.0] * 4)
    return tmp_path


def test_head_to_head_counts_wins_ties_and_losses(multirun):
    rates = win_rates(load_runs(multirun)).set_index(["matchup", "prompt_kind"])
    # per seed: win, tie, win, tie -> 0.75 overall; benign: win + tie; harmful: win + tie
    assert rates.loc[("seq2seq vs scalar", "all"), "win_rate"] == pytest.approx(0.75)
    assert rates.loc[("seq2seq vs scalar", "all"), "n"] == 8 and rates.loc[("seq2seq vs scalar", "all"), "seeds"] == 2
    assert rates.loc[("seq2seq vs scalar", "benign"), "win_rate"] == pytest.approx(0.75)
    assert rates.loc[("scalar vs sft", "all"), "win_rate"] == pytest.approx(0.625)
    low, high = rates.loc[("seq2seq vs scalar", "all"), ["ci_low", "ci_high"]]
    assert 0.5 <= low <= 0.75 <= high <= 1.0


def test_bootstrap_interval_is_degenerate_for_constant_scores():
    assert bootstrap_interval(pd.Series([1.0] * 20).to_numpy()) == (1.0, 1.0)


def test_summary_has_mean_and_spread_over_seeds(multirun):
    table = summary_table(load_runs(multirun)).set_index(["task", "arm"])
    assert table.loc[("safety", "seq2seq"), "eval/length_mean"] == "3.5 ± 0.5"
    assert table.loc[("safety", "scalar"), "seeds"] == 2


def test_compare_cli_writes_tables_and_plots(multirun, tmp_path):
    out = tmp_path / "report"
    main([str(multirun), "--out", str(out)])
    for name in ("summary.csv", "summary.md", "win_rates.csv", "win_rates.png", "lengths_safety.png"):
        assert (out / name).is_file(), name


def test_compare_refuses_a_folder_without_generations(tmp_path):
    with pytest.raises(FileNotFoundError, match="eval stage"):
        load_runs(tmp_path)


def test_knob_win_rates_group_runs_by_knob_value(tmp_path):
    from seq2seq_rm.reporting.compare import knob_win_rates

    kinds = ["benign", "harmful"]
    for q, s2s in ((0.0, [0.0, 0.0]), (0.1, [1.0, 1.0])):
        for arm, utilities in (("seq2seq", s2s), ("scalar", [0.5, 0.5])):
            folder = tmp_path / f"{arm}{q}"
            fake_run(folder, "safety", arm, 0, utilities, kinds, [0.0, 0.0])
            results = json.loads((folder / "results.json").read_text())
            (folder / "results.json").write_text(json.dumps({**results, "knob/q": q, "knob/p_alarm": 0.8}))
    table = knob_win_rates(load_runs(tmp_path))
    assert set(table["knob"]) == {"q"}  # p_alarm did not vary
    head_to_head = table[table["matchup"] == "seq2seq vs scalar"]
    assert head_to_head.set_index("value")["win_rate"].to_dict() == {0.0: 0.0, 0.1: 1.0}


def test_matchups_cover_every_arm_against_scalar_gold_and_sft():
    from seq2seq_rm.reporting.compare import matchups

    pairs = matchups({"seq2seq_mean", "seq2seq_sum", "scalar", "scalar_lp", "gold"})
    assert ("seq2seq_mean", "scalar") in pairs and ("scalar_lp", "scalar") in pairs
    assert ("scalar", "scalar") not in pairs and ("gold", "gold") not in pairs
    assert ("scalar", "gold") in pairs and ("gold", "sft") in pairs
    assert pairs.index(("seq2seq_mean", "scalar")) < pairs.index(("scalar_lp", "scalar"))


def test_sampled_decoding_pairs_sample_i_with_sample_i(multirun):
    """samples.jsonl: each arm's sample i on a prompt against the other arm's sample i."""
    for folder, utilities in (("s2s0", [1.0, 0.0]), ("sc0", [0.0, 0.0])):
        rows = [{"prompt_index": 0, "sample": i, "prompt": "p0", "prompt_kind": "benign", "response": "x",
                 "gold_utility": u, "sft_response": "y", "sft_gold_utility": 0.5} for i, u in enumerate(utilities)]
        (multirun / folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = [r for r in load_runs(multirun) if r.results["seed"] == 0]
    rates = win_rates(runs, "sampled").set_index(["matchup", "prompt_kind"])
    assert rates.loc[("seq2seq vs scalar", "all"), "win_rate"] == pytest.approx(0.75)  # win, tie
    assert rates.loc[("seq2seq vs sft", "all"), "win_rate"] == pytest.approx(0.5)  # win, loss
    greedy = win_rates(runs, "greedy").set_index(["matchup", "prompt_kind"])
    assert greedy.loc[("seq2seq vs scalar", "all"), "n"] == 4


def test_summary_reads_at_a_glance(multirun, tmp_path):
    """summary.md: a verdict per task in words, then arms as rows with the few metrics that matter."""
    out = tmp_path / "report"
    main([str(multirun), "--out", str(out), "--decoding", "greedy"])
    text = (out / "summary.md").read_text()
    assert "- safety: seq2seq beats scalar 0.75 [" in text
    assert "## safety" in text
    rows = [line for line in text.splitlines() if line.startswith("| seq2seq ") or line.startswith("| scalar ")]
    assert len(rows) == 2  # one row per arm
    assert "| arm " in text and "vs scalar" in text and "harmful compliance" not in text  # no empty columns


def test_verdict_words_follow_the_interval():
    from seq2seq_rm.reporting.compare import verdicts

    rates = pd.DataFrame([
        {"task": "t", "matchup": "seq2seq_mean vs scalar", "prompt_kind": "all", "win_rate": 0.6, "ci_low": 0.55,
         "ci_high": 0.65},
        {"task": "t", "matchup": "seq2seq_mean vs sft", "prompt_kind": "all", "win_rate": 0.45, "ci_low": 0.4,
         "ci_high": 0.52},
        {"task": "t", "matchup": "gold vs sft", "prompt_kind": "all", "win_rate": 0.3, "ci_low": 0.25, "ci_high": 0.35},
    ]).assign(prompt_set="test")
    assert verdicts(rates) == ["t: seq2seq_mean beats scalar 0.60 [0.55, 0.65]; ties with sft 0.45 [0.40, 0.52]. "
                               "gold-reward control loses to sft 0.30 [0.25, 0.35]"]


def test_compare_never_sends_a_key_where_a_results_json_says(tmp_path, monkeypatch):
    """A crafted results.json names an API judge, a URL and an environment variable: compare refuses
    to contact it unless the endpoint is given on compare's own command line."""
    monkeypatch.setenv("SOME_SECRET", "do-not-send")
    for arm in ("seq2seq", "scalar"):
        folder = tmp_path / arm
        folder.mkdir()
        spec = {"type": "api", "base_url": "http://attacker.invalid/v1", "model": "m", "api_key_env": "SOME_SECRET"}
        (folder / "results.json").write_text(json.dumps({"task": "hh", "seed": 0, "rm": arm, "judge": spec}))
        rows = [{"prompt": "p", "prompt_kind": "dialogue", "response": arm, "sft_response": "s",
                 "judge_verdict_vs_sft": 1.0}]
        (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="--judge-base-url"):
        win_rates(load_runs(tmp_path))


@pytest.mark.parametrize("module", ["seq2seq_rm.compare", "seq2seq_rm.report"])
def test_entry_points_name_a_missing_folder_in_one_line(tmp_path, module):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", module, str(tmp_path / "nowhere")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nowhere" in lines[0]


def test_ood_prompt_sets_get_their_own_win_rates_table_and_plot(tmp_path):
    """Runs evaluated on an extra prompt set: win rates per set, a set-by-matchup table in summary.md and a
    plot; the verdicts and the test-set rows are those of the test set alone."""
    kinds = ["benign", "harmful"]
    for seed in (0, 1):
        for arm, test_u, ood_u in (("seq2seq", [1.0, 1.0], [0.0, 0.0]), ("scalar", [0.0, 0.0], [1.0, 1.0])):
            folder = tmp_path / f"{arm}{seed}"
            fake_run(folder, "safety", arm, seed, test_u, kinds, [0.5, 0.5])
            rows = [json.loads(x) for x in (folder / "generations.jsonl").read_text().splitlines()]
            extra = [{**r, "prompt_set": "bare", "gold_utility": u} for r, u in zip(rows, ood_u, strict=True)]
            (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + extra))
    rates = win_rates(load_runs(tmp_path), "greedy")
    overall = rates[rates["prompt_kind"] == "all"].set_index(["prompt_set", "matchup"])["win_rate"]
    assert overall[("test", "seq2seq vs scalar")] == 1.0 and overall[("bare", "seq2seq vs scalar")] == 0.0
    assert overall[("test", "seq2seq vs sft")] == 1.0 and overall[("bare", "seq2seq vs sft")] == 0.0
    main([str(tmp_path), "--decoding", "greedy"])
    summary = (tmp_path / "summary.md").read_text()
    assert "safety: seq2seq beats scalar 1.00" in summary  # the verdict reads the test set only
    assert "win rate by prompt set" in summary and "| seq2seq vs scalar |" in summary
    assert (tmp_path / "win_rates_by_prompt_set.png").is_file()


def test_the_headline_names_the_judge_that_decided(tmp_path):
    """Embedded tasks: the gold judge on the chosen decoding; real data: the runs' eval judge on greedy responses."""
    from seq2seq_rm.reporting.compare import Run, how_judged

    gold = Run(tmp_path, {"task": "safety"}, pd.DataFrame({"gold_utility": [1.0]}))
    real = Run(tmp_path, {"task": "hh_harmless", "judge": {"type": "rm"}},
               pd.DataFrame({"judge_verdict_vs_sft": [1.0]}))
    assert how_judged([gold], "sampled") == "sampled responses, gold judge"
    assert how_judged([real], "sampled") == "greedy responses, the runs' eval judge (rm)"
    assert how_judged([gold, real], "greedy") == ("greedy responses, gold judge; "
                                                  "greedy responses, the runs' eval judge (rm)")

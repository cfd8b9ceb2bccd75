from seq2seq_rm.eval.rm_probes import probe_warnings


def test_probe_warnings_flag_what_predicted_rl_failures():
    assert probe_warnings("safety", {"refusal_rewritten/benign": 0.2}) != []
    assert probe_warnings("safety", {"refusal_rewritten/benign": 0.8}) == []
    assert probe_warnings("safety", {}) == []  # a scalar RM has no rewrite probe
    flagged = probe_warnings("summarization", {"padded_above_gold": 0.9, "repetitive_above_gold": 0.1})
    assert len(flagged) == 1 and "padded" in flagged[0]


def test_length_correlation_warns_in_both_directions():
    (longer,) = probe_warnings("hh_harmless", {"length_correlation": 0.9, "pairwise_accuracy": 0.6})
    (shorter,) = probe_warnings("hh_harmless", {"length_correlation": -0.99})
    assert "lengthen" in longer and "shorten" in shorter
    assert probe_warnings("hh_harmless", {"length_correlation": 0.3}) == []

"""What enters each stage's cache key, and the arm labels results.json and compare use."""

from hydra import compose, initialize_config_dir

from seq2seq_rm.run import CONFIG_DIR
from seq2seq_rm.stages.keys import arm_label, read_off_label, rm_training_config, sft_task_config
from seq2seq_rm.tasks import SummarizationTask


def _compose(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("run", overrides=list(overrides))


def test_read_off_is_not_part_of_the_trained_rm():
    plain, mean = _compose("rm=seq2seq"), _compose("rm=seq2seq_mean")
    assert rm_training_config(plain.rm) == rm_training_config(mean.rm)
    assert rm_training_config(plain.rm)["aligned_positions"] is True  # the training layout stays in
    assert rm_training_config(_compose("rm=scalar").rm) == rm_training_config(_compose("rm=scalar_lp").rm)
    assert rm_training_config(plain.rm) != rm_training_config(_compose("rm=seq2seq", "rm.epochs=3").rm)


def test_arm_labels_name_the_read_off():
    assert [arm_label(_compose(f"rm={rm}").rm) for rm in
            ("scalar", "scalar_lp", "scalar_decorr", "seq2seq_sum", "seq2seq_penalty", "gold")] == \
        ["scalar", "scalar_lp", "scalar_decorr", "seq2seq_sum", "seq2seq_penalty", "gold"]
    soft = _compose("rm=seq2seq", "rm.reward.soft=true", "rm.reward.aggregation=mean").rm
    assert read_off_label(soft) == "soft_mean" and arm_label(soft) == "seq2seq_soft_mean"


def test_sft_key_skips_the_knobs_that_shape_only_pairs():
    task = SummarizationTask()
    low, high = _compose("task=summarization"), _compose("task=summarization", "task.p_long=0.5", "+labels=tie_neutral")
    assert sft_task_config(low, task) == sft_task_config(high, task)
    assert sft_task_config(low, task) != sft_task_config(_compose("task=summarization", "task.n_sft=10"), task)

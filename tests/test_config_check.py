"""The whole config is checked before any work: one line naming key, value and what is allowed."""

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from seq2seq_rm.config_check import AGGREGATIONS, ConfigError, check_config
from seq2seq_rm.rewards import extraction
from seq2seq_rm.run import CONFIG_DIR

ALL = ["sft", "rm", "ppo", "eval"]


def _compose(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("run", overrides=list(overrides))


@pytest.mark.parametrize("experiment", ["main", "paper", "smoke", "ablation_length", "ablation_refusal"])
@pytest.mark.parametrize("rm", ["scalar", "scalar_lp", "scalar_decorr", "seq2seq", "seq2seq_penalty", "gold"])
def test_shipped_configs_pass(experiment, rm):
    check_config(_compose(f"experiment={experiment}", f"rm={rm}"), ALL)


@pytest.mark.parametrize("override,message", [
    ("ppo.module.lr=abc", r"ppo\.module\.lr='abc'.*a number > 0"),
    ("rm.reward.extraction=foo", r"rm\.reward\.extraction='foo'.*one of \['prefix'"),
    ("sft.batch_size=0", r"sft\.batch_size=0.*integer >= 1"),
    ("sft.module.lr=0", r"sft\.module\.lr=0"), ("sft.max_steps=0", r"sft\.max_steps"),
    ("rm.epochs=0", r"rm\.epochs"), ("ppo.iterations=0", r"ppo\.iterations"),
    ("ppo.module.minibatches=0", r"ppo\.module\.minibatches"), ("ppo.module.beta=-0.1", r"ppo\.module\.beta"),
    ("ppo.checkpoint_every=0", r"ppo\.checkpoint_every"), ("seed=abc", r"seed='abc'"),
    ("rm.reward.aggregation=median", r"rm\.reward\.aggregation"), ("ppo.module.lam=1.5", r"<= 1"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(_compose(override), ALL)


@pytest.mark.parametrize("fraction", ["0", "1.0", "-0.1", "abc"])
def test_the_judge_rms_held_out_fraction_is_checked(fraction):
    check_config(_compose("judge=rm"), ALL)
    with pytest.raises(ConfigError, match=r"judge\.held_out_fraction=.*> 0 and < 1"):
        check_config(_compose("judge=rm", f"judge.held_out_fraction={fraction}"), ALL)
    # a judge RM given by path is not trained here: the fraction is not used
    check_config(_compose("judge=rm", "judge.path=/some/folder", f"judge.held_out_fraction={fraction}"), ALL)


def test_later_stages_are_checked_only_when_requested():
    bad_ppo = _compose("ppo.iterations=0")
    check_config(bad_ppo, ["sft", "rm"])
    with pytest.raises(ConfigError, match="ppo.iterations"):
        check_config(bad_ppo, ["ppo"])  # ppo alone still trains SFT and the RM first: all three are checked
    with pytest.raises(ConfigError, match="sft.batch_size"):
        check_config(_compose("sft.batch_size=0"), ["eval"])


def test_aggregations_listed_here_are_the_extraction_ones():
    assert AGGREGATIONS == extraction.AGGREGATIONS


def test_cli_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seq2seq_rm.run", "stages=[sft,rm,ppo]", "ppo.module.lr=abc"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: config: ppo.module.lr='abc' is not allowed; it must be a number > 0"]
    assert not (tmp_path / "artifacts").exists()  # nothing was trained

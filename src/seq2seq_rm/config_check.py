"""Check the composed config before any stage runs: types, ranges and allowed values of every key
that the requested stages (and the earlier stages they pull in) will use.

A bad value fails in well under a second with one line naming the key, the value and what is allowed,
instead of after minutes of training, or worse, training into a cache entry that later runs reuse.
Task knobs are checked by the task's own constructor, which runs before any stage too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from seq2seq_rm.errors import ConfigError

STAGE_ORDER = ("sft", "rm", "ppo", "eval")
# rewards.extraction.AGGREGATIONS, repeated so that checking imports no torch (a test keeps them equal)
AGGREGATIONS = ("sum", "mean", "penalty", "cap")
# each embedded task's ood_sets, repeated for the same reason (a test keeps them equal); other tasks: test only
PROMPT_SETS = {"seq2seq_rm.tasks.SafetyTask": ("test", "val", "bare", "stacked", "request_first"),
               "seq2seq_rm.tasks.SummarizationTask": ("test", "val", "interleaved", "long", "single_key")}


@dataclass(frozen=True)
class Rule:
    kind: str  # int | number | bool | choice
    allowed: str  # what the error message says is allowed
    test: Callable[[object], bool] = lambda v: True
    optional: bool = False  # may be absent (the code has a default for it)


def integer(low: int) -> Rule:
    return Rule("int", f"an integer >= {low}", lambda v: v >= low)


def number(low: float, strict: bool = False, high: float | None = None) -> Rule:
    bound = f"> {low}" if strict else f">= {low}"
    text = f"a number {bound}" + (f" and <= {high}" if high is not None else "")
    return Rule("number", text, lambda v: (v > low if strict else v >= low) and (high is None or v <= high))


def choice(*values: str) -> Rule:
    return Rule("choice", f"one of {list(values)}", lambda v: v in values)


FLAG = Rule("bool", "true or false")
ANY_NUMBER = Rule("number", "a number")
# the scalar RM's read-off settings default to a plain score when a config leaves them out
OPTIONAL_FLAG = Rule("bool", "true or false", optional=True)
OPTIONAL_NUMBER = Rule("number", "a number", optional=True)

COMMON = {"seed": integer(0), "threads": integer(1)}
SFT = {"sft.batch_size": integer(1), "sft.max_steps": integer(1), "sft.val_check_interval": integer(1),
       "sft.max_new_tokens": integer(1), "sft.n_eval_prompts": integer(1), "sft.n_eval_samples": integer(1),
       "sft.n_logged_samples": integer(0), "sft.module.lr": number(0, strict=True),
       "sft.module.weight_decay": number(0), "sft.module.warmup_steps": integer(0)}
RM_TRAINED = {"rm.epochs": integer(1), "rm.batch_size": integer(1), "rm.n_probe_prompts": integer(1),
              "rm.on_bad_pair": choice("skip", "error"), "rm.module.lr": number(0, strict=True),
              "rm.module.weight_decay": number(0), "rm.module.warmup_steps": integer(0)}
RM_SCALAR = {"rm.module.margin": ANY_NUMBER, "rm.module.center_coef": number(0),
             "rm.reward.length_penalty": OPTIONAL_NUMBER, "rm.reward.decorrelate_length": OPTIONAL_FLAG}
RM_SEQ2SEQ = {"rm.identity_weight": number(0), "rm.reward.extraction": choice("prefix", "per_token", "decode"),
              "rm.reward.aggregation": choice(*AGGREGATIONS), "rm.reward.r_pos": number(0),
              "rm.reward.r_neg": number(0), "rm.reward.pos_cap": number(0, strict=True), "rm.reward.soft": FLAG,
              "rm.reward.aligned_positions": FLAG}
PPO = {"ppo.iterations": integer(1), "ppo.checkpoint_every": integer(1), "ppo.n_eval_prompts": integer(1),
       "ppo.n_eval_samples": integer(1)} | {f"ppo.module.{k}": rule for k, rule in {
           "prompts_per_iteration": integer(1), "samples_per_prompt": integer(1), "max_new_tokens": integer(1),
           "temperature": number(0, strict=True), "top_k": integer(0), "epochs": integer(1), "minibatches": integer(1),
           "lr": number(0, strict=True), "weight_decay": number(0), "clip_ratio": number(0, strict=True),
           "value_clip": number(0, strict=True), "vf_coef": number(0), "max_grad_norm": number(0, strict=True),
           "gamma": number(0, high=1), "lam": number(0, high=1), "beta": number(0),
           "kl_estimator": choice("k1", "k3"), "adaptive_kl": FLAG, "kl_target": number(0, strict=True),
           "kl_horizon": integer(1), "reward_norm": FLAG}.items()}
# a judge RM trained here (judge=rm without a path) holds out this share of the judge split to measure itself
JUDGE_RM = {"judge.held_out_fraction": Rule("number", "a number > 0 and < 1", lambda v: 0 < v < 1)}
EVAL = {"eval.n_prompts": integer(1), "eval.n_samples": integer(1), "eval.temperature": number(0, strict=True),
        "eval.max_new_tokens": integer(1), "eval.n_logged": integer(0), "eval.n_ood_prompts": integer(1)}


def _type_ok(rule: Rule, value: object) -> bool:
    if rule.kind == "bool":
        return isinstance(value, bool)
    if rule.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if rule.kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def rules_for(cfg: DictConfig, stages: list[str]) -> dict[str, Rule]:
    """The keys the requested stages use, earlier stages included (``stages=[ppo]`` trains SFT and the RM)."""
    last = max((STAGE_ORDER.index(s) for s in stages if s in STAGE_ORDER), default=0)
    used = STAGE_ORDER[: last + 1]
    rules = dict(COMMON) | SFT
    rm_type = OmegaConf.select(cfg, "rm.type")
    if "rm" in used:
        rules["rm.type"] = choice("scalar", "seq2seq", "gold")
        if rm_type in ("scalar", "seq2seq"):
            rules |= RM_TRAINED | (RM_SCALAR if rm_type == "scalar" else RM_SEQ2SEQ)
    if "ppo" in used:
        rules |= PPO
    if "eval" in used:
        rules |= EVAL
        if OmegaConf.select(cfg, "judge.type") == "rm" and not OmegaConf.select(cfg, "judge.path"):
            rules |= JUDGE_RM
    return rules


def _check_prompt_sets(cfg: DictConfig) -> None:
    sets = OmegaConf.select(cfg, "eval.prompt_sets", default=None)
    valid = PROMPT_SETS.get(OmegaConf.select(cfg, "task._target_", default=""), ("test", "val"))
    if not isinstance(sets, ListConfig | list) or not sets:
        raise ConfigError(f"config: eval.prompt_sets={sets!r} is not allowed; it must be a non-empty list of "
                          f"{list(valid)}")
    unknown = [s for s in sets if s not in valid]
    if unknown or len(set(sets)) != len(sets):
        raise ConfigError(f"config: eval.prompt_sets={list(sets)!r} is not allowed; it must list distinct names "
                          f"from {list(valid)}")


def check_config(cfg: DictConfig, stages: list[str]) -> None:
    """Raise ``ConfigError`` naming the first bad key, its value and what is allowed."""
    for key, rule in rules_for(cfg, stages).items():
        value = OmegaConf.select(cfg, key, default="<missing>")
        if value == "<missing>":
            if rule.optional:
                continue
            raise ConfigError(f"config: {key} is missing; it must be {rule.allowed}")
        if not _type_ok(rule, value) or not rule.test(value):
            raise ConfigError(f"config: {key}={value!r} is not allowed; it must be {rule.allowed}")
    if "eval" in stages:
        _check_prompt_sets(cfg)
    if OmegaConf.select(cfg, "rm.reward.soft") is True and OmegaConf.select(cfg, "rm.reward.extraction") == "decode":
        raise ConfigError("config: rm.reward.soft=true applies to the prefix and per_token rules, not to decode")

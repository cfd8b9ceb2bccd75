"""Stage eval: judge the run's last policy on held-out prompts against the SFT policy."""

from __future__ import annotations

import json
from statistics import fmean

import torch
from hydra.utils import instantiate
from transformers import PreTrainedModel

from seq2seq_rm.data.tokenizer import encode, encode_prompt
from seq2seq_rm.errors import ConfigError
from seq2seq_rm.eval.bias import bias_metrics, win_rate
from seq2seq_rm.judges import verdicts_to_win_rate
from seq2seq_rm.judges.base import PairwiseJudge
from seq2seq_rm.models.backbone import load_backbone
from seq2seq_rm.models.generation import generate_responses
from seq2seq_rm.modules.samples import log_generation_table
from seq2seq_rm.stages import judge as judge_stage
from seq2seq_rm.stages import ppo
from seq2seq_rm.stages.context import Context, artifact_dir


def _gold_eval(ctx: Context, prompts: list, greedy: list[str], sft_greedy: list[str],
               sft_policy: PreTrainedModel) -> tuple[dict, list[dict], list[dict]]:
    """Gold-judge metrics of an embedded task: utility, bias metrics and win rate vs SFT, under greedy
    decoding and on samples (``eval.n_samples`` per prompt from both the policy and the SFT policy: RL
    optimises the sampling policy, so the sampled win rate is the headline; greedy is reported beside it)."""
    cfg, ev = ctx.cfg, ctx.cfg.eval
    texts = [p.text for p in prompts]
    sampled_prompts = [p for p in prompts for _ in range(ev.n_samples)]
    sampled_texts = [p.text for p in sampled_prompts]
    torch.manual_seed(cfg.seed)
    sampled = generate_responses(ctx.policy, ctx.tokenizer, sampled_texts, ev.max_new_tokens,
                                 do_sample=True, temperature=ev.temperature)
    torch.manual_seed(cfg.seed + 1)
    sft_sampled = generate_responses(sft_policy, ctx.tokenizer, sampled_texts, ev.max_new_tokens,
                                     do_sample=True, temperature=ev.temperature)
    judged = [ctx.task.judge(t, r) for t, r in zip(texts, greedy, strict=True)]
    sft_judged = [ctx.task.judge(t, r) for t, r in zip(texts, sft_greedy, strict=True)]
    sampled_judged = [ctx.task.judge(t, r) for t, r in zip(sampled_texts, sampled, strict=True)]
    sft_sampled_judged = [ctx.task.judge(t, r) for t, r in zip(sampled_texts, sft_sampled, strict=True)]
    metrics = {f"eval/{k}": v for k, v in bias_metrics(ctx.task.name, prompts, judged, greedy).items()}
    metrics.update({f"eval/sampled/{k}": v for k, v in
                    bias_metrics(ctx.task.name, sampled_prompts, sampled_judged, sampled).items()})
    metrics["eval/win_rate_vs_sft"] = win_rate([j.utility for j in judged], [j.utility for j in sft_judged])
    metrics["eval/sampled/win_rate_vs_sft"] = win_rate([j.utility for j in sampled_judged],
                                                       [j.utility for j in sft_sampled_judged])
    metrics["eval/sampled/sft_gold_utility"] = fmean(j.utility for j in sft_sampled_judged)
    rows = [{"gold_utility": j.utility, "response_kind": j.kind, "labels": j.labels,
             "gold_token_labels": j.token_labels, "sft_gold_utility": sj.utility}
            for j, sj in zip(judged, sft_judged, strict=True)]
    samples = [{"prompt_index": i // ev.n_samples, "sample": i % ev.n_samples, "prompt": p.text, "prompt_kind": p.kind,
                "response": r, "gold_utility": j.utility, "response_kind": j.kind, "length": len(r.split()),
                "sft_response": sr, "sft_gold_utility": sj.utility}
               for i, (p, r, j, sr, sj) in enumerate(zip(sampled_prompts, sampled, sampled_judged, sft_sampled,
                                                         sft_sampled_judged, strict=True))]
    return metrics, rows, samples


def ood_task_set(ctx: Context) -> tuple[str, list] | None:
    """``eval.ood_task`` (another task's config, e.g. ``+task@eval.ood_task=pku_saferlhf``): its held-out
    test prompts as one more prompt set, ``ood_<its name>``, judged by this run's judge."""
    spec = ctx.cfg.eval.get("ood_task")
    if not spec:
        return None
    other = instantiate(spec)
    return f"ood_{other.name}", other.generate().test_prompts[: ctx.cfg.eval.n_ood_prompts]


def _prompts(ctx: Context, name: str) -> list:
    ev = ctx.cfg.eval
    if name == "test":
        return ctx.data.test_prompts[: ev.n_prompts]
    if name in ctx.extra_prompt_sets:
        return ctx.extra_prompt_sets[name]
    if not hasattr(ctx.task, "prompt_set"):
        raise ConfigError(f"eval.prompt_sets: task {ctx.task.name} has only the 'test' prompt set")
    return ctx.task.prompt_set(name, ev.n_ood_prompts)


def _evaluate_set(ctx: Context, name: str, sft_policy: PreTrainedModel,
                  judge: PairwiseJudge | None) -> tuple[dict, list[dict], list[dict]]:
    """Metrics (``eval/...`` for the test set, ``eval/<set>/...`` for the others), generation rows and
    sample rows of one prompt set."""
    ev = ctx.cfg.eval
    prompts = _prompts(ctx, name)
    texts = [p.text for p in prompts]
    greedy = generate_responses(ctx.policy, ctx.tokenizer, texts, ev.max_new_tokens)
    sft_greedy = generate_responses(sft_policy, ctx.tokenizer, texts, ev.max_new_tokens)
    metrics = {"eval/length_mean": fmean(len(r.split()) for r in greedy),
               "eval/sft_length_mean": fmean(len(r.split()) for r in sft_greedy)}
    gold_rows: list[dict] = [{} for _ in prompts]
    samples: list[dict] = []
    if ctx.task.has_gold_judge:
        gold_metrics, gold_rows, samples = _gold_eval(ctx, prompts, greedy, sft_greedy, sft_policy)
        metrics.update(gold_metrics)
    verdicts = None
    if judge is not None:
        verdicts = judge.compare(texts, greedy, sft_greedy)
        metrics["eval/judge/win_rate_vs_sft"] = verdicts_to_win_rate(verdicts)
        metrics.update({f"eval/judge/{k}": v for k, v in judge.statistics().items()})
        if not ctx.task.has_gold_judge:
            metrics["eval/win_rate_vs_sft"] = metrics["eval/judge/win_rate_vs_sft"]

    token_rewards = None
    if ctx.reward is not None:
        prompt_ids = [encode_prompt(ctx.tokenizer, t) for t in texts]
        response_ids = [encode(ctx.tokenizer, r) for r in greedy]
        token_rewards = ctx.reward.token_rewards(prompt_ids, response_ids)
    rows = []
    for i, (prompt, response, sft_response) in enumerate(zip(prompts, greedy, sft_greedy, strict=True)):
        n_tokens = len(encode(ctx.tokenizer, response))
        rows.append({"prompt_set": name, "prompt": prompt.text, "prompt_kind": prompt.kind, "response": response,
                     "tokens": ctx.tokenizer.convert_ids_to_tokens(encode(ctx.tokenizer, response)),
                     **gold_rows[i],
                     "token_rewards": token_rewards[i, :n_tokens].tolist() if token_rewards is not None else None,
                     "sft_response": sft_response,
                     **({"judge_verdict_vs_sft": verdicts[i]} if verdicts is not None else {})})
    if name != "test":
        metrics = {f"eval/{name}/{k[len('eval/'):]}": v for k, v in metrics.items()}
    return metrics, rows, [{"prompt_set": name, **row} for row in samples]


def run(ctx: Context) -> dict[str, float]:
    """Judge the run's last policy (PPO's if it ran, else SFT's) against the SFT policy on each prompt
    set of ``eval.prompt_sets`` (``test``: held-out prompts like the training ones; the others: the
    task's out-of-distribution sets); write every generation, with the run's per-token rewards, to
    generations.jsonl and the samples to samples.jsonl (a ``prompt_set`` field on every line).

    Embedded tasks are judged by their gold judge; a judge other than gold (``judge=rm|api``) also
    gives ``eval/judge/win_rate_vs_sft``, and is the only judge of a real-data task."""
    cfg, ev = ctx.cfg, ctx.cfg.eval
    if ctx.policy is None:
        ctx.results.update(ppo.run(ctx))
    ctx.policy.eval()
    sft_policy = load_backbone(artifact_dir(cfg, "sft", ctx.keys["sft"])).eval()
    judge = judge_stage.run(ctx) if cfg.judge.type != "gold" or not ctx.task.has_gold_judge else None
    extra = ood_task_set(ctx)
    ctx.extra_prompt_sets = dict([extra]) if extra else {}
    metrics, rows, samples = {}, [], []
    for name in [*ev.prompt_sets, *ctx.extra_prompt_sets]:
        set_metrics, set_rows, set_samples = _evaluate_set(ctx, name, sft_policy, judge)
        metrics.update(set_metrics)
        rows += set_rows
        samples += set_samples
    if samples:
        with (ctx.output_dir / "samples.jsonl").open("w") as f:
            f.writelines(json.dumps(row) + "\n" for row in samples)
    with (ctx.output_dir / "generations.jsonl").open("w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    logger = instantiate(cfg.logger)(stage="eval")
    logger.log_metrics(metrics)
    log_generation_table(logger, "eval/generations", rows[: ev.n_logged])
    logger.finalize("success")
    return metrics

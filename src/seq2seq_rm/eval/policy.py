"""Judge a policy's generations on held-out prompts with the task's gold judge."""

from __future__ import annotations

from collections import Counter, defaultdict
from statistics import fmean

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.models.generation import generate_responses
from seq2seq_rm.tasks.base import Judgement, Prompt, Task


def response_mix(task: Task, prompts: list[Prompt], judged: list[Judgement]) -> dict[str, float]:
    """Share of each response kind per prompt kind: ``mix/<prompt kind>/<response kind>``."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for prompt, judgement in zip(prompts, judged, strict=True):
        counts[prompt.kind][judgement.kind] += 1
    mix = {}
    for prompt_kind in task.prompt_kinds:
        total = sum(counts[prompt_kind].values())
        for response_kind in task.response_kinds:
            mix[f"mix/{prompt_kind}/{response_kind}"] = counts[prompt_kind][response_kind] / total if total else 0.0
    return mix


def evaluate_policy(
    task: Task,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[Prompt],
    max_new_tokens: int,
    n_samples: int = 4,
    temperature: float = 1.0,
    seed: int = 0,
) -> tuple[dict[str, float], list[dict]]:
    """Greedy and sampled gold utility, response length, and the sampled response-kind mix (lengths
    only for a task without a gold judge).

    The mix is measured on samples (temperature 1): that is the behaviour RL starts from; a
    greedy decode hides the minority behaviours a policy still produces.
    """
    texts = [p.text for p in prompts]
    greedy = generate_responses(model, tokenizer, texts, max_new_tokens)
    torch.manual_seed(seed)
    sampled_prompts = [p for p in prompts for _ in range(n_samples)]
    sampled = generate_responses(model, tokenizer, [p.text for p in sampled_prompts], max_new_tokens,
                                 do_sample=True, temperature=temperature)
    lengths = {"length_mean": fmean(len(r.split()) for r in greedy),
               "length_mean_sampled": fmean(len(r.split()) for r in sampled)}
    if not task.has_gold_judge:  # real data: the eval stage's judge compares policies; here only lengths
        return lengths, [{"prompt": p.text, "prompt_kind": p.kind, "response": r}
                         for p, r in zip(prompts, greedy, strict=True)]
    greedy_judged = [task.judge(p.text, r) for p, r in zip(prompts, greedy, strict=True)]
    sampled_judged = [task.judge(p.text, r) for p, r in zip(sampled_prompts, sampled, strict=True)]
    metrics = {
        "gold_utility": fmean(j.utility for j in greedy_judged),
        "gold_utility_sampled": fmean(j.utility for j in sampled_judged),
        **lengths,
        **response_mix(task, sampled_prompts, sampled_judged),
    }
    rows = [{"prompt": p.text, "prompt_kind": p.kind, "response": r, "gold_utility": j.utility,
             "response_kind": j.kind} for p, r, j in zip(prompts, greedy, greedy_judged, strict=True)]
    return metrics, rows

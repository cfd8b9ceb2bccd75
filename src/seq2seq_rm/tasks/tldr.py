"""OpenAI summarize-from-feedback adapter (``task=tldr``).

Preferences: comparison rows ``{info: {post, title, subreddit}, summaries: [{text}, {text}], choice}``.
SFT: the TL;DR data ``{subreddit, title, post, summary}`` (``task.sft_path``; without it, SFT uses
the chosen summaries of the train pairs). Both use the prompt
``SUBREDDIT: r/<subreddit> TITLE: <title> POST: <post> TL;DR:``.
"""

from __future__ import annotations

from collections.abc import Iterator

from seq2seq_rm.tasks.base import Demonstration, PreferencePair, Prompt
from seq2seq_rm.tasks.real import RealTask
from seq2seq_rm.tasks.records import Row, RowError, read_rows


def tldr_prompt(subreddit: str, title: str, post: str) -> Prompt:
    return Prompt(f"SUBREDDIT: r/{subreddit.strip()} TITLE: {title.strip()} POST: {post.strip()} TL;DR:", kind="post")


def _info_prompt(row: Row, prefix: str) -> Prompt:
    # the subreddit is missing from some real rows: None is allowed, an empty name stands in
    subreddit = row.get(f"{prefix}subreddit", (str, type(None))) or ""
    return tldr_prompt(subreddit, row.get(f"{prefix}title", str), row.get(f"{prefix}post", str, non_empty=True))


def tldr_pair(row: Row) -> PreferencePair:
    prompt = _info_prompt(row, "info.")
    summaries = row.get("summaries", list)
    if len(summaries) != 2:
        raise RowError(row.where, "summaries", f"expected 2 summaries, got {len(summaries)}")
    texts = [Row(row.where, {"summaries": {str(i): s}}).get(f"summaries.{i}.text", str, non_empty=True)
             for i, s in enumerate(summaries)]
    choice = row.get("choice", int)
    if choice not in (0, 1):
        raise RowError(row.where, "choice", f"must be 0 or 1, got {choice}")
    return PreferencePair(prompt, texts[choice].strip(), texts[1 - choice].strip())


def tldr_demonstration(row: Row) -> Demonstration:
    return Demonstration(_info_prompt(row, ""), row.get("summary", str, non_empty=True).strip())


class TLDRTask(RealTask):
    name = "tldr"
    prompt_kinds = ("post",)
    hub_name = "openai/summarize_from_feedback"

    def __init__(self, sft_path: str | None = None, sft_hub_name: str | None = None, max_sft: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.sft_path, self.sft_hub_name, self.max_sft = sft_path, sft_hub_name, max_sft

    def pairs(self) -> Iterator[tuple[str, PreferencePair]]:
        for row in read_rows(self.path, self.hub_name, self.split, name="comparisons"):
            yield row.where, tldr_pair(row)

    def demonstrations(self) -> list[Demonstration] | None:
        if not self.sft_path and not self.sft_hub_name:
            return None
        demos = []
        for row in read_rows(self.sft_path, self.sft_hub_name or "", self.split):
            if self.max_sft is not None and len(demos) >= self.max_sft:
                break
            demo = tldr_demonstration(row)
            words = len(demo.prompt.text.split()), len(demo.response.split())
            if words[0] <= self.max_prompt_words and words[1] <= self.max_response_words:
                demos.append(demo)
        return demos

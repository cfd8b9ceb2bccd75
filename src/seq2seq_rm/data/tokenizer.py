"""Tokenizers: a word-level one built from a task's vocabulary, or a pretrained model's own.

Both carry the framework's special tokens, the same for every backbone: ``<pad> <eos> <sep> <fb>``
(``<sep>`` ends the prompt, ``<fb>`` ends the response a seq2seq reward model rewrites).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from seq2seq_rm.errors import ConfigError

PAD, EOS, SEP, FB, UNK = "<pad>", "<eos>", "<sep>", "<fb>", "<unk>"


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    eos: int
    sep: int
    fb: int


def special_ids(tokenizer: PreTrainedTokenizerBase) -> SpecialIds:
    sep, fb = tokenizer.convert_tokens_to_ids([SEP, FB])
    return SpecialIds(pad=tokenizer.pad_token_id, eos=tokenizer.eos_token_id, sep=sep, fb=fb)


def build_word_tokenizer(vocabulary: list[str]) -> PreTrainedTokenizerFast:
    """One id per whitespace-separated word of the task; unknown words map to ``<unk>``."""
    specials = [PAD, EOS, SEP, FB, UNK]
    words = [w for w in dict.fromkeys(vocabulary) if w not in specials]
    vocab = {token: i for i, token in enumerate(specials + words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK,
        additional_special_tokens=[SEP, FB], padding_side="right",
    )


ChatTemplate = Literal["auto", True, False]
CHAT_TEMPLATE_KEY = "seq2seq_rm_chat_template"  # saved in tokenizer_config.json: prompts go through the template


def load_pretrained_tokenizer(
    vocabulary: list[str], name_or_path: str, trust_remote_code: bool = False, chat_template: ChatTemplate = False
) -> PreTrainedTokenizerBase:
    """A pretrained model's tokenizer plus the framework's special tokens.

    ``chat_template``: ``auto`` wraps every prompt in the tokenizer's chat template when it has one (an
    instruct model was trained on that format), ``true`` requires one, ``false`` uses the raw prompt text.
    ``vocabulary`` is unused: a pretrained tokenizer covers any text. It is accepted so that every
    tokenizer factory has the same signature.
    """
    del vocabulary
    if chat_template not in ("auto", True, False):
        raise ConfigError(f"model.tokenizer.chat_template must be auto, true or false, not {chat_template!r}")
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat_template is True and not has_template:
        raise ConfigError(f"model.tokenizer.chat_template=true, but the tokenizer at {name_or_path} has no chat "
                          "template; use auto or false")
    # kept in the tokenizer's config, so that every stage and the judge, loading it from an artifact, agree
    tokenizer.init_kwargs[CHAT_TEMPLATE_KEY] = has_template and chat_template in ("auto", True)
    added = {"additional_special_tokens": [SEP, FB]}
    if tokenizer.eos_token is None:
        added["eos_token"] = EOS
    if tokenizer.pad_token is None:
        added["pad_token"] = PAD
    tokenizer.add_special_tokens(added)
    tokenizer.padding_side = "right"
    return tokenizer


def encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# HH-RLHF writes a dialogue as "\n\nHuman: ...\n\nAssistant: ..."; its prompts end with "Assistant:"
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ ]?")


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """A prompt as chat messages: an HH-style dialogue turn by turn (the trailing empty ``Assistant:``,
    which the generation prompt replaces, dropped), any other text as one user message."""
    parts = _TURN.split(prompt)
    if len(parts) < 3 or parts[0].strip():
        return [{"role": "user", "content": prompt}]
    roles = {"Human": "user", "Assistant": "assistant"}
    turns = zip(parts[1::2], parts[2::2], strict=True)
    messages = [{"role": roles[speaker], "content": text.strip()} for speaker, text in turns]
    if messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """A prompt's ids: in the tokenizer's chat template, ending in the assistant's generation prompt, when
    the model was loaded with it on (``CHAT_TEMPLATE_KEY``, saved with the tokenizer); otherwise the raw text."""
    if not tokenizer.init_kwargs.get(CHAT_TEMPLATE_KEY, False):
        return encode(tokenizer, text)
    rendered = tokenizer.apply_chat_template(chat_messages(text), add_generation_prompt=True, tokenize=False)
    return encode(tokenizer, rendered)

"""Tokenizers: a word-level one built from a task's vocabulary, or a pretrained model's own.

Both carry the framework's special tokens, the same for every backbone: ``<pad> <eos> <sep> <fb>``
(``<sep>`` ends the prompt, ``<fb>`` ends the response a seq2seq reward model rewrites).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

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


def load_pretrained_tokenizer(
    vocabulary: list[str], name_or_path: str, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """A pretrained model's tokenizer plus the framework's special tokens.

    ``vocabulary`` is unused: a pretrained tokenizer covers any text. It is accepted so that every
    tokenizer factory has the same signature.
    """
    del vocabulary
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
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

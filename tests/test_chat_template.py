"""Chat templates: a pretrained tokenizer's template wraps every prompt (``model.tokenizer.chat_template``)."""

from __future__ import annotations

import pytest

from seq2seq_rm.data.tokenizer import (
    build_word_tokenizer,
    chat_messages,
    encode,
    encode_prompt,
    load_pretrained_tokenizer,
)
from seq2seq_rm.errors import ConfigError

# ChatML, as SmolLM2-Instruct and Qwen write it, with words a word-level tokenizer can hold
TEMPLATE = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
            "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
WORDS = "<|im_start|> <|im_end|> user assistant how do i bake bread knead the dough then what bake it".split()


def saved_tokenizer(tmp_path, template: str | None):
    tokenizer = build_word_tokenizer(WORDS)
    if template is not None:
        tokenizer.chat_template = template
    tokenizer.save_pretrained(tmp_path)
    return str(tmp_path)


def test_auto_wraps_prompts_in_the_template_and_ends_with_the_generation_prompt(tmp_path):
    tokenizer = load_pretrained_tokenizer([], saved_tokenizer(tmp_path, TEMPLATE), chat_template="auto")
    ids = encode_prompt(tokenizer, "how do i bake bread")
    assert tokenizer.decode(ids) == "<|im_start|> user how do i bake bread <|im_end|> <|im_start|> assistant"
    assert ids == tokenizer.apply_chat_template([{"role": "user", "content": "how do i bake bread"}],
                                                add_generation_prompt=True, tokenize=True, return_dict=False)


def test_hh_dialogues_become_turns(tmp_path):
    tokenizer = load_pretrained_tokenizer([], saved_tokenizer(tmp_path, TEMPLATE), chat_template=True)
    dialogue = "Human: how do i bake bread\n\nAssistant: knead the dough\n\nHuman: then what\n\nAssistant:"
    assert chat_messages(dialogue) == [{"role": "user", "content": "how do i bake bread"},
                                       {"role": "assistant", "content": "knead the dough"},
                                       {"role": "user", "content": "then what"}]
    assert tokenizer.decode(encode_prompt(tokenizer, dialogue)) == (
        "<|im_start|> user how do i bake bread <|im_end|> <|im_start|> assistant knead the dough <|im_end|> "
        "<|im_start|> user then what <|im_end|> <|im_start|> assistant")


@pytest.mark.parametrize("text", ["how do i bake bread", "SUBREDDIT: r/cooking\nPOST: Human: x\nTL;DR:"])
def test_other_text_is_one_user_message(text):
    assert chat_messages(text) == [{"role": "user", "content": text}]


def test_false_or_no_template_encodes_the_raw_text(tmp_path):
    with_template = load_pretrained_tokenizer([], saved_tokenizer(tmp_path / "a", TEMPLATE), chat_template=False)
    without = load_pretrained_tokenizer([], saved_tokenizer(tmp_path / "b", None), chat_template="auto")
    for tokenizer in (with_template, without):
        assert encode_prompt(tokenizer, "how do i bake bread") == encode(tokenizer, "how do i bake bread")


def test_a_required_template_that_is_missing_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="has no chat template"):
        load_pretrained_tokenizer([], saved_tokenizer(tmp_path, None), chat_template=True)
    with pytest.raises(ConfigError, match="auto, true or false"):
        load_pretrained_tokenizer([], saved_tokenizer(tmp_path, TEMPLATE), chat_template="yes")


def test_the_choice_travels_with_the_saved_tokenizer(tmp_path):
    """Later stages and the judge load the tokenizer from the SFT artifact: they must wrap prompts the same way."""
    from transformers import AutoTokenizer

    tokenizer = load_pretrained_tokenizer([], saved_tokenizer(tmp_path / "hub", TEMPLATE), chat_template="auto")
    tokenizer.save_pretrained(tmp_path / "artifact")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "artifact")
    assert encode_prompt(reloaded, "how do i bake bread") == encode_prompt(tokenizer, "how do i bake bread")
    assert encode_prompt(reloaded, "how do i bake bread") != encode(reloaded, "how do i bake bread")
    off = load_pretrained_tokenizer([], saved_tokenizer(tmp_path / "hub2", TEMPLATE), chat_template=False)
    off.save_pretrained(tmp_path / "artifact_off")
    reloaded_off = AutoTokenizer.from_pretrained(tmp_path / "artifact_off")
    assert encode_prompt(reloaded_off, "how do i bake bread") == encode(reloaded_off, "how do i bake bread")

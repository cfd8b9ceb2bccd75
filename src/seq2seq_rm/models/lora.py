"""Optional LoRA (``model.lora``) through peft, injected in place so the model keeps its class.

Every training stage (SFT, both RMs, PPO) adds fresh adapters to the model it starts from and
trains only them, the input embeddings (the framework's added special tokens need to be learned)
and its own heads; artifacts are saved with the adapters merged, so every stage loads a plain
transformers model and nothing downstream needs peft.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn
from transformers import PreTrainedModel

from seq2seq_rm.errors import ConfigError


def add_lora(model: PreTrainedModel, options: Mapping | None) -> PreTrainedModel:
    """Inject LoRA adapters (``r``, ``alpha``, ``dropout``, ``target_modules``) and freeze the rest of
    the backbone but its input embeddings; ``options`` None or empty: the model, untouched."""
    if not options:
        return model
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ImportError("model.lora needs peft: pip install 'seq2seq-rm[lora]'") from None
    unknown = set(options) - {"r", "alpha", "dropout", "target_modules"}
    if unknown:
        raise ConfigError(f"model.lora has unknown keys {sorted(unknown)}; valid: r, alpha, dropout, target_modules")
    config = LoraConfig(r=int(options.get("r", 16)), lora_alpha=float(options.get("alpha", 32)),
                        lora_dropout=float(options.get("dropout", 0.0)),
                        target_modules=options.get("target_modules", "all-linear"))
    model = inject_adapter_in_model(config, model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = "lora_" in name
    model.get_input_embeddings().weight.requires_grad = True
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA adapter into its base layer and put the base layer back (in place)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # without peft there can be no adapters
        return model
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
    for parameter in model.parameters():
        parameter.requires_grad = True
    return model

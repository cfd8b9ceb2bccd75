"""FSDP2 sharding of the project's models (``trainer=fsdp``): one shard group per decoder block.

FSDP gathers a group's parameters when the group's module runs ``forward``. The training code calls
pieces of a model directly (the trunk, then the LM head and a value head; a reward read-off; ``generate``),
so each model and its heads are gathered under one :class:`ShardRoot`: every call goes through the
root's ``forward`` (``root(fn, *args)`` runs ``fn(*args)`` with the non-block parameters gathered), and
the decoder blocks inside gather and free themselves one at a time. A tied LM head shares the embedding's
parameter; both sit in the root's group, which is what FSDP needs to keep them tied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard
from transformers import PreTrainedModel

from seq2seq_rm.errors import ConfigError


def decoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated decoder blocks of every transformers model inside ``model``, found by the class
    names transformers declares unsplittable (``_no_split_modules``)."""
    names = {name for m in model.modules() if isinstance(m, PreTrainedModel)
             for name in (getattr(m, "_no_split_modules", None) or [])}
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    if not blocks:
        raise ConfigError(f"trainer=fsdp: {type(model).__name__} declares no decoder blocks (_no_split_modules), "
                          "so it cannot be sharded block by block; use trainer=ddp")
    return blocks


class ShardRoot(nn.Module):
    """The FSDP root over some models and heads: ``root(fn, *args, **kwargs)`` runs ``fn`` inside the
    root's forward. Without sharding it is a plain call."""

    def __init__(self, **modules: nn.Module) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def shard(mesh: DeviceMesh, **modules: nn.Module) -> ShardRoot:
    """Shard ``modules`` in place over the mesh (each decoder block its own group, the rest one root
    group) and return the root through which every call of them must go."""
    for module in modules.values():
        if any(getattr(m, "peft_config", None) for m in module.modules()):
            raise ConfigError("trainer=fsdp with LoRA (model.lora) is not supported; use trainer=ddp for LoRA")
    root = ShardRoot(**modules)
    for block in decoder_blocks(root):
        fully_shard(block, mesh=mesh)
    fully_shard(root, mesh=mesh)
    return root

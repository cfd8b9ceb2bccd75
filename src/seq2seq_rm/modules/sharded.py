"""Mixin for the LightningModules: their models sharded under ``trainer=fsdp``, plain otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from seq2seq_rm.models.sharding import ShardRoot, shard
from seq2seq_rm.strategies import shards_parameters


class ShardedCalls:
    """``shard_groups`` (from ``configure_model``) shards each group of models over the data-parallel
    mesh when the strategy provides one; ``through(group, fn, ...)`` then runs every call of those
    models through the group's FSDP root, and is a plain call without sharding."""

    def shard_groups(self, **groups: dict[str, nn.Module]) -> None:
        mesh = self.device_mesh
        if mesh is None or self.is_sharded:
            return
        roots = {name: shard(mesh["data_parallel"], **modules) for name, modules in groups.items()}
        # a plain attribute, not a submodule: the roots re-register modules the LightningModule already holds
        object.__setattr__(self, "_shard_roots", roots)

    @property
    def is_sharded(self) -> bool:
        return bool(getattr(self, "_shard_roots", None))

    def through(self, group: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        root: ShardRoot | None = getattr(self, "_shard_roots", {}).get(group)
        return fn(*args, **kwargs) if root is None else root(fn, *args, **kwargs)

    @property
    def synced_generation(self) -> bool:
        """Whether ``generate`` must keep every rank stepping (ranks hold only weight shards)."""
        return self._trainer is not None and shards_parameters(self.trainer.strategy)

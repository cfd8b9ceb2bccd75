"""Lightning strategies this project adds: FSDP2 and DeepSpeed ZeRO-2, launched by spawning processes.

Lightning's ``ModelParallelStrategy`` (FSDP2 with optional tensor parallelism) re-runs the script per
rank, which inside a Hydra multirun re-launches the sweep (hence ``trainer=ddp`` uses ``ddp_spawn``).
:class:`FSDPSpawnStrategy` is that strategy, data-parallel only, started the way ``ddp_spawn`` is; the
spawned ranks gather the full weights at the end of ``fit`` so that the main process, which holds the
unsharded module, continues with the trained model. Checkpoints are single full files
(``save_distributed_checkpoint=False``), like every other strategy's here. :class:`DeepSpeedSpawnStrategy`
is Lightning's DeepSpeed strategy started the same way, at ZeRO stage 2 (weights replicated, so rank 0's
weights are the model's).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.strategies import DeepSpeedStrategy, ModelParallelStrategy, Strategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from torch.distributed.constants import default_pg_timeout

from seq2seq_rm.errors import ConfigError


class _FullWeightsSpawnLauncher(_MultiProcessingLauncher):
    """Sends rank 0's *full* weights back to the main process (the launcher would send its shards)."""

    def _collect_rank_zero_results(self, trainer: L.Trainer, results: Any):
        full = self._strategy.lightning_module_state_dict()  # a collective: every rank takes part
        module = trainer.lightning_module
        module.state_dict = lambda *args, **kwargs: full
        try:
            return super()._collect_rank_zero_results(trainer, results)
        finally:
            del module.state_dict


class FSDPSpawnStrategy(ModelParallelStrategy):
    """FSDP2 over every device, one data-parallel group, spawned ranks (see the module docstring)."""

    def __init__(self, process_group_backend: str | None = None,
                 timeout: timedelta | None = default_pg_timeout) -> None:
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1, save_distributed_checkpoint=False,
                         process_group_backend=process_group_backend, timeout=timeout)

    def _configure_launcher(self) -> None:
        self._launcher = _FullWeightsSpawnLauncher(self, start_method="spawn")

    def setup_environment(self) -> None:
        if self._data_parallel_size == "auto":
            self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()


class DeepSpeedSpawnStrategy(DeepSpeedStrategy):
    """DeepSpeed ZeRO-2 (optimizer state and gradients sharded) on spawned ranks; needs the ``deepspeed``
    extra and CUDA. ZeRO-3 would send the main process placeholders instead of weights: use trainer=fsdp."""

    def __init__(self, stage: int = 2, **kwargs: Any) -> None:
        if stage not in (1, 2):
            raise ConfigError(f"trainer=deepspeed supports ZeRO stages 1 and 2, got {stage}; "
                              "for sharded weights use trainer=fsdp")
        super().__init__(stage=stage, **kwargs)
        self._start_method = "spawn"


def shards_parameters(strategy: Strategy) -> bool:
    """Whether ranks hold only shards of the weights, so that every rank must take part in every
    forward pass (``generate`` then needs ``synced_gpus``: ranks stop at different lengths)."""
    if isinstance(strategy, ModelParallelStrategy):
        return strategy.world_size > 1
    if isinstance(strategy, DeepSpeedStrategy):
        return strategy.world_size > 1 and strategy.zero_stage_3
    return False

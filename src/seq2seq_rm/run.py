"""Entry point: ``python -m seq2seq_rm.run [overrides]`` (Hydra; ``-m`` for sweeps, ``--cfg job`` to print)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="run")
def main(cfg: DictConfig) -> float:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from seq2seq_rm.config_check import check_config
    from seq2seq_rm.errors import user_error_in

    try:
        check_config(cfg, list(cfg.stages))  # before the heavy imports: a bad value fails in a second
        instantiate(cfg.task)  # the task checks its own knobs in its constructor, which loads no data
        from seq2seq_rm.pipeline import run

        results = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except Exception as error:  # bad input: one line and exit code 2; the traceback only with HYDRA_FULL_ERROR=1
        cause = user_error_in(error)
        if cause is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(2)
    return results.get(cfg.get("objective", ""), 0.0)  # the value an hparams_search sweeper optimises


if __name__ == "__main__":
    main()

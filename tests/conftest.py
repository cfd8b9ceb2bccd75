import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per test worker: `make test` runs one worker per core (pytest -n auto)
    import torch

    torch.set_num_threads(1)

"""Whitening statistics under data parallelism: two gloo processes, each holding half of a batch,
must whiten with exactly the statistics one process computes over the whole batch."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seq2seq_rm.rl.ppo_math import global_masked_stats, masked_mean, masked_var, masked_whiten


def _batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, generator=generator)
    mask = (torch.rand(8, 5, generator=generator) > 0.3).float()
    return x, mask


def _rank(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)

    def reduce_sum(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    x, mask = _batch()
    mine = slice(rank * 4, rank * 4 + 4)
    mean, var = global_masked_stats(x[mine], mask[mine], reduce_sum)
    results[rank] = (float(mean), float(var), masked_whiten(x[mine], mask[mine], stats=(mean, var)))
    dist.destroy_process_group()


def test_two_process_whitening_matches_one_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_rank, args=(port, results), nprocs=2, join=True)
    x, mask = _batch()
    expected_mean, expected_var = float(masked_mean(x, mask)), float(masked_var(x, mask))
    for rank in (0, 1):
        mean, var, whitened = results[rank]
        assert abs(mean - expected_mean) < 1e-6 and abs(var - expected_var) < 1e-6
        assert torch.allclose(whitened, masked_whiten(x, mask)[rank * 4: rank * 4 + 4], atol=1e-6)
    # and on one process the reduction is the identity
    single = global_masked_stats(x, mask, lambda t: t)
    assert abs(float(single[0]) - expected_mean) < 1e-6 and abs(float(single[1]) - expected_var) < 1e-6

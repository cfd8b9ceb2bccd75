"""trainer=fsdp: FSDP2 sharding per decoder block, spawned gloo ranks on CPU.

Sharding changes where the weights live, not what is computed: two FSDP ranks must train exactly
what two DDP ranks train (same global batch, same data split), through SFT, the seq2seq RM and PPO
(whose rollouts generate under sharding), and the main process must end up with the full weights."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from seq2seq_rm.errors import ConfigError
from seq2seq_rm.models.sharding import decoder_blocks, shard


def test_decoder_blocks_of_gpt2_and_llama():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=16, n_head=2, vocab_size=50))
    llama = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, hidden_size=16, intermediate_size=32,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=50))
    assert [type(b).__name__ for b in decoder_blocks(gpt2)] == ["GPT2Block"] * 3
    assert [type(b).__name__ for b in decoder_blocks(llama)] == ["LlamaDecoderLayer"] * 2
    # found inside a wrapper too (the scalar RM's ScalarHeadModel holds the LM)
    assert len(decoder_blocks(nn.ModuleDict({"lm": gpt2, "head": nn.Linear(16, 1)}))) == 3


def test_models_without_blocks_or_with_lora_are_config_errors():
    with pytest.raises(ConfigError, match="no decoder blocks"):
        decoder_blocks(nn.Sequential(nn.Linear(4, 4)))
    lora_like = nn.Linear(4, 4)
    lora_like.peft_config = {"default": object()}
    with pytest.raises(ConfigError, match="LoRA"):
        shard(None, model=lora_like)


def _weights(artifacts: Path, stage: str) -> dict[str, torch.Tensor]:
    (folder,) = [p for p in (artifacts / stage).iterdir() if p.is_dir()]
    return load_file(folder / "model.safetensors")


def test_fsdp_trains_exactly_what_ddp_trains(tmp_path):
    """Also the end-to-end test of trainer=ddp_cpu (ddp_spawn, gloo) through SFT, an RM and PPO."""
    from cli import run_cli

    results, artifacts = {}, {}
    for trainer in ("ddp_cpu", "fsdp_cpu"):
        artifacts[trainer] = tmp_path / f"art_{trainer}"
        proc = run_cli("experiment=smoke", "stages=[sft,rm,ppo]", "rm=seq2seq", "rm.epochs=2", "ppo.iterations=2",
                       f"trainer={trainer}",
                       f"hydra.run.dir=run_{trainer}", f"paths.artifacts={artifacts[trainer]}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[trainer] = json.loads((tmp_path / f"run_{trainer}" / "results.json").read_text())
    ddp, fsdp = results["ddp_cpu"], results["fsdp_cpu"]
    assert isinstance(ddp["ppo/train/kl"], float) and isinstance(ddp["ppo/policy/gold_utility"], float)
    for key in ("sft/val/loss", "rm/val/loss", "rm/val/token_accuracy", "ppo/train/kl", "ppo/train/pg_loss",
                "ppo/train/reward", "ppo/policy/gold_utility_sampled"):
        assert fsdp[key] == pytest.approx(ddp[key], rel=1e-4, abs=1e-6), key
    # the artifacts hold full (unsharded) weights, trained: equal across strategies, moved by PPO
    ppo_ddp, ppo_fsdp = _weights(artifacts["ddp_cpu"], "ppo"), _weights(artifacts["fsdp_cpu"], "ppo")
    sft = _weights(artifacts["fsdp_cpu"], "sft")
    assert ppo_fsdp.keys() == ppo_ddp.keys() == sft.keys()
    for name, tensor in ppo_fsdp.items():
        assert tensor.shape == sft[name].shape
        torch.testing.assert_close(tensor, ppo_ddp[name], rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(ppo_fsdp[name], sft[name]) for name in sft)
    # the scalar RM too (it scores full sequences under FSDP, each prompt once under DDP); SFT is cached
    for trainer in ("ddp_cpu", "fsdp_cpu"):
        proc = run_cli("experiment=smoke", "stages=[sft,rm]", "rm=scalar", "rm.epochs=2", f"trainer={trainer}",
                       f"hydra.run.dir=scalar_{trainer}", f"paths.artifacts={artifacts[trainer]}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[trainer] = json.loads((tmp_path / f"scalar_{trainer}" / "results.json").read_text())
    for key in ("rm/val/loss", "rm/val/accuracy", "rm/val/margin"):
        assert results["fsdp_cpu"][key] == pytest.approx(results["ddp_cpu"][key], rel=1e-4, abs=1e-6), key


def test_sharded_trainer_configs_build_their_strategies():
    from hydra.utils import instantiate
    from lightning.pytorch.strategies import DDPStrategy
    from omegaconf import OmegaConf

    from seq2seq_rm.strategies import DeepSpeedSpawnStrategy, FSDPSpawnStrategy, shards_parameters

    conf = Path(__file__).parents[1] / "conf" / "trainer"
    for name in ("fsdp", "fsdp_cpu"):
        strategy = instantiate(OmegaConf.load(conf / f"{name}.yaml").strategy)
        assert isinstance(strategy, FSDPSpawnStrategy) and not strategy._save_distributed_checkpoint
    assert not shards_parameters(DDPStrategy())
    deepspeed = OmegaConf.load(conf / "deepspeed.yaml").strategy
    assert deepspeed._target_.endswith("DeepSpeedSpawnStrategy") and deepspeed.stage == 2
    with pytest.raises(ConfigError, match="trainer=fsdp"):
        DeepSpeedSpawnStrategy(stage=3)

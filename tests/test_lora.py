"""model.lora: adapters injected in place, only they (and the embeddings) train, merged on save."""

from __future__ import annotations

import pytest
import torch

from seq2seq_rm.data.tokenizer import build_word_tokenizer
from seq2seq_rm.models.backbone import gpt2_from_scratch, llama_from_scratch, load_backbone, save_backbone
from seq2seq_rm.models.lora import add_lora

pytest.importorskip("peft")


@pytest.mark.parametrize("factory", [gpt2_from_scratch, llama_from_scratch])
def test_lora_trains_adapters_and_saves_a_plain_model(tmp_path, factory):
    tokenizer = build_word_tokenizer(["a", "b", "c", "d"])
    torch.manual_seed(0)
    model = factory(tokenizer, n_layer=2, n_embd=32, n_head=4, n_positions=16)
    x = torch.randint(0, len(tokenizer), (3, 8))
    before = model(x).logits.detach()
    model = add_lora(model, {"r": 4, "alpha": 8})
    assert torch.allclose(model(x).logits, before, atol=1e-6)  # zero-initialised B: same function at start
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.endswith(("wte.weight", "embed_tokens.weight")) for n in trainable)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(x, labels=x).loss.backward()
    optimizer.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    trained = model(x).logits.detach()
    assert not torch.allclose(trained, before)
    save_backbone(model, tokenizer, tmp_path)
    reloaded = load_backbone(tmp_path)
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    assert torch.allclose(reloaded(x).logits, trained, atol=1e-5)


def test_lora_rejects_unknown_keys():
    tokenizer = build_word_tokenizer(["a"])
    model = gpt2_from_scratch(tokenizer, n_layer=1, n_embd=16, n_head=2, n_positions=8)
    with pytest.raises(ValueError, match="unknown keys \\['rank'\\]"):
        add_lora(model, {"rank": 4})
    assert add_lora(model, None) is model

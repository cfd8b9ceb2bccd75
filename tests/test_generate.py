import torch

from seq2seq_rm.data.tokenizer import build_word_tokenizer
from seq2seq_rm.models import gpt2_from_scratch
from seq2seq_rm.models.generation import generate_responses


def test_batched_left_padded_generation_matches_one_by_one():
    tok = build_word_tokenizer("a b c d e f g h".split())
    torch.manual_seed(0)
    model = gpt2_from_scratch(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64)
    prompts = ["a b c d e f", "g", "h a"]
    batched = generate_responses(model, tok, prompts, max_new_tokens=6)
    single = [generate_responses(model, tok, [p], max_new_tokens=6)[0] for p in prompts]
    assert batched == single
    assert all(len(r.split()) <= 6 for r in batched)

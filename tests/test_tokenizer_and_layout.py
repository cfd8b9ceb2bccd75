import torch
from transformers import AutoTokenizer

from seq2seq_rm.data.layout import IGNORE_INDEX, pad_batch, sft_example
from seq2seq_rm.data.tokenizer import build_word_tokenizer, encode, special_ids


def test_word_tokenizer_round_trips_and_saves(tmp_path):
    tok = build_word_tokenizer(["how", "do", "i", "bake", "bread", "?"])
    ids = encode(tok, "how do i bake bread ?")
    assert len(ids) == 6 and tok.decode(ids) == "how do i bake bread ?"
    assert encode(tok, "how zebra")[1] == tok.unk_token_id
    specials = special_ids(tok)
    assert len({specials.pad, specials.eos, specials.sep, specials.fb}) == 4
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert encode(loaded, "how do i bake bread ?") == ids and special_ids(loaded) == specials


def test_sft_layout_masks_prompt_and_pads():
    tok = build_word_tokenizer(["a", "b", "c"])
    ids = special_ids(tok)
    row = sft_example([5, 6], [7], ids)
    assert row["input_ids"] == [5, 6, ids.sep, 7, ids.eos]
    assert row["labels"] == [IGNORE_INDEX] * 3 + [7, ids.eos]
    batch = pad_batch([row, sft_example([5], [7, 7], ids)], pad_id=ids.pad)
    assert batch["input_ids"].shape == (2, 5)
    assert torch.equal(batch["attention_mask"].sum(1), torch.tensor([5, 5]))
    short = pad_batch([row, sft_example([5], [], ids)], pad_id=ids.pad)
    assert short["labels"][1].tolist() == [IGNORE_INDEX, IGNORE_INDEX, ids.eos, IGNORE_INDEX, IGNORE_INDEX]

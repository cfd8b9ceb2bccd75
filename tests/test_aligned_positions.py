"""The seq2seq RM's aligned rewrite positions: the layout, the decoding loop, and their agreement."""

from __future__ import annotations

import pytest
import torch

from seq2seq_rm.data.layout import rewrite_example, rewrite_positions
from seq2seq_rm.data.pairs import EncodedPair, collate_rewrite
from seq2seq_rm.data.tokenizer import build_word_tokenizer, special_ids
from seq2seq_rm.models.backbone import gpt2_from_scratch
from seq2seq_rm.models.generation import generate_continuations, greedy_continuations_at
from seq2seq_rm.rewards.interface import Seq2seqReward


def test_rewrite_positions_align_target_with_source():
    # prompt p0 p1, <sep>, source s0 s1 s2, <fb>, target t0 t1, <eos>
    assert rewrite_positions(2, 3, 2) == [0, 1, 2, 3, 4, 5, 2, 3, 4, 5]
    assert rewrite_positions(0, 0, 0) == [0, 0, 1]
    row = rewrite_example([7, 8], [9, 9, 9], [9, 9], special_ids(build_word_tokenizer(["a"])), aligned_positions=True)
    assert len(row["position_ids"]) == len(row["input_ids"])


def test_collate_pads_position_ids():
    ids = special_ids(build_word_tokenizer(["a", "b"]))
    batch = collate_rewrite([EncodedPair([5], [6, 6], [5]), EncodedPair([5, 6], [5], [6])], ids, 1.0,
                            aligned_positions=True)
    assert batch["position_ids"].shape == batch["input_ids"].shape
    # row 0: the correction of pair 0, rejected [5] -> chosen [6, 6], after its prompt [5] <sep>
    assert batch["position_ids"][0].tolist()[: 5] == rewrite_positions(1, 1, 2)[2:]
    assert batch["prompt_ids"].shape == (2, 3) and batch["input_ids"].shape[0] == 4
    assert batch["is_correction"].tolist() == [True, False, True, False]


@pytest.fixture
def model_and_ids():
    tokenizer = build_word_tokenizer([str(i) for i in range(20)])
    torch.manual_seed(0)
    return gpt2_from_scratch(tokenizer, n_layer=2, n_embd=32, n_head=4, n_positions=64).eval(), special_ids(tokenizer)


def test_positioned_greedy_loop_matches_generate_on_plain_positions(model_and_ids):
    model, ids = model_and_ids
    contexts = [[5, 6, 7, ids.sep], [8, ids.sep], [9, 10, 11, 12, 13, ids.sep]]
    expected = generate_continuations(model, contexts, ids, max_new_tokens=6)
    positions = [list(range(len(c))) for c in contexts]
    assert greedy_continuations_at(model, contexts, positions, ids, max_new_tokens=6) == expected


def test_aligned_rewrite_is_kept_whole_by_the_prefix_rule(model_and_ids):
    """Teacher forcing and greedy decoding read the RM the same way: its own rewrite gets no negative reward."""
    model, ids = model_and_ids
    reward = Seq2seqReward(model, ids, extraction="prefix", aligned_positions=True, max_rewrite_tokens=6)
    prompts, responses = [[5, 6], [7], [8, 9]], [[8, 9, 10], [11], [12, 13, 14, 15]]
    rewrites = reward.rewrites(prompts, responses)
    assert all(rewrites)
    rewards = reward.token_rewards(prompts, rewrites)
    for row, rewrite in zip(rewards, rewrites, strict=True):
        # every token kept; only the last may be negative, when the rewrite ran out of budget before <eos>
        assert (row[: len(rewrite) - 1] > 0).all()

import torch

from seq2seq_rm.modules.ppo import action_mask_of


def test_action_mask_keeps_tokens_through_the_first_eos():
    eos = 1
    responses = torch.tensor([[5, 6, 1, 0, 0], [5, 1, 7, 1, 0], [5, 6, 7, 8, 9], [1, 0, 0, 0, 0]])
    assert action_mask_of(responses, eos).tolist() == [
        [1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]

import pytest
import torch

from seq2seq_rm.rewards.extraction import (
    aggregate,
    align_token_rewards,
    per_token_rewards,
    prefix_rewards,
    soft_prefix_rewards,
)

P, N = 1.0, 2.0  # distinct magnitudes, so a swapped sign or constant shows


@pytest.mark.parametrize("response,corrected,expected", [
    ([1, 2, 3], [1, 2, 3], [P, P, P]),            # equal
    ([1, 2, 3], [1, 9, 3], [P, -N, P]),           # replace
    ([1, 2, 3], [1, 3], [P, -N, P]),              # delete
    ([1, 2], [9, 1, 2], [-N, P]),                 # insert at start: first token
    ([1, 2], [1, 9, 2], [-N, P]),                 # insert in the middle: token before
    ([1, 2], [1, 2, 9], [P, -N]),                 # insert at the end: last token
    ([1, 2], [], [-N, -N]),                       # empty correction: everything deleted
    ([], [1, 2], []),                             # empty response
])
def test_align_token_rewards(response, corrected, expected):
    assert align_token_rewards(response, corrected, r_pos=P, r_neg=N) == expected


def test_prefix_rewards_negative_from_first_change_and_for_missing_end():
    agree = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 0], [1, 0, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]])
    eos_agree = torch.tensor([1, 0, 1])
    out = prefix_rewards(agree, eos_agree, mask, r_pos=P, r_neg=N)
    assert out.tolist() == [[P, P, -N, -N], [P, P, -N, 0.0], [P, -N, -N, -N]]


def test_per_token_rewards_judge_each_token():
    out = per_token_rewards(torch.tensor([[1, 0, 1, 1]]), torch.tensor([[1, 1, 1, 0]]), P, N)
    assert out.tolist() == [[P, -N, P, 0.0]]


def test_soft_prefix_matches_hard_rule_at_certainty():
    p_keep = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    out = soft_prefix_rewards(p_keep, torch.tensor([1.0]), torch.ones(1, 4), P, N)
    assert out.tolist() == [[P, P, -N, -N]]
    half = soft_prefix_rewards(torch.tensor([[0.5, 1.0]]), torch.tensor([0.5]), torch.ones(1, 2), P, N)
    assert half.tolist() == [[0.5 * P - 0.5 * N, 0.25 * P - 0.75 * N]]


def test_aggregations():
    rewards, mask = torch.tensor([[1.0, 1.0, -2.0, 0.0]]), torch.tensor([[1, 1, 1, 0]])
    assert aggregate(rewards, mask, "sum").tolist() == rewards.tolist()
    assert torch.allclose(aggregate(rewards, mask, "mean"), torch.tensor([[1 / 3, 1 / 3, -2 / 3, 0.0]]))
    assert aggregate(rewards, mask, "penalty").tolist() == [[0.0, 0.0, -2.0, 0.0]]
    assert aggregate(rewards, mask, "cap", cap=1.0).tolist() == [[0.5, 0.5, -2.0, 0.0]]
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(rewards, mask, "log")


def test_what_a_fully_kept_response_earns():
    """The README's table: a response the RM keeps entirely earns n (sum), 1 (mean), 0 (penalty)."""
    for n in (3, 9):
        kept = prefix_rewards(torch.ones(1, n), torch.ones(1), torch.ones(1, n), 1.0, 1.0)
        totals = {mode: float(aggregate(kept, torch.ones(1, n), mode).sum()) for mode in ("sum", "mean", "penalty")}
        assert totals == pytest.approx({"sum": n, "mean": 1.0, "penalty": 0.0})

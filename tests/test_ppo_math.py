import math

import pytest
import torch

from seq2seq_rm.rl.ppo_math import (
    AdaptiveKLController,
    compute_gae,
    explained_variance,
    kl_k1,
    kl_k3,
    masked_whiten,
    policy_loss,
    value_loss,
)


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([math.log(0.5), math.log(0.2)]), torch.tensor([math.log(0.25), math.log(0.4)])
    assert kl_k1(logp, ref).tolist() == pytest.approx([math.log(2), math.log(0.5)])
    # k3 = r - 1 - log r with r = ref / pi
    assert kl_k3(logp, ref).tolist() == pytest.approx([0.5 - 1 - math.log(0.5), 2 - 1 - math.log(2)])
    assert (kl_k3(logp, ref) >= 0).all()


def test_gae_by_hand_with_padding():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [2.0, 5.0, 5.0]])
    values = torch.tensor([[0.5, 0.5, 0.5], [1.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv, ret = compute_gae(rewards, values, mask, gamma=1.0, lam=0.5)
    # row 0: d2 = 1 - 0.5 = 0.5; d1 = 0 + 0.5 - 0.5 = 0; d0 = 0
    # A2 = 0.5, A1 = 0 + 0.5 * 0.5 = 0.25, A0 = 0 + 0.5 * 0.25 = 0.125
    assert adv[0].tolist() == pytest.approx([0.125, 0.25, 0.5])
    assert ret[0].tolist() == pytest.approx([0.625, 0.75, 1.0])
    # row 1 ends after one token: A0 = 2 - 1 = 1; padding contributes nothing
    assert adv[1].tolist() == pytest.approx([1.0, 0.0, 0.0]) and ret[1].tolist() == pytest.approx([2.0, 0.0, 0.0])


def test_gae_gamma_discounts():
    adv, _ = compute_gae(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), torch.ones(1, 2), gamma=0.9, lam=1.0)
    assert adv[0].tolist() == pytest.approx([0.9, 1.0])


def test_masked_whiten_ignores_padding():
    x, mask = torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1, 1, 0]])
    out = masked_whiten(x, mask)
    # mean 2, unbiased var 2
    assert out[0].tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2), 0.0], abs=1e-6)


def test_policy_loss_clips_by_hand():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.5)]])
    adv, mask = torch.tensor([[1.0, -1.0]]), torch.ones(1, 2)
    loss, clipfrac, approx_kl = policy_loss(new, old, adv, mask, clip_ratio=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(0.5, 0.8) = 0.8 (clipped)
    assert loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    assert clipfrac.item() == pytest.approx(1.0)
    assert approx_kl.item() == pytest.approx(((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2)


def test_value_loss_clips_by_hand():
    values, old, returns = torch.tensor([[2.0, 0.1]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    loss, clipfrac = value_loss(values, old, returns, torch.ones(1, 2), clip_range=0.2)
    # token 0: max((2-0)^2, (0.2-0)^2) = 4; token 1: max((0.1-1)^2, (0.1-1)^2) = 0.81
    assert loss.item() == pytest.approx(0.5 * (4 + 0.81) / 2)
    assert clipfrac.item() == 0.0


def test_explained_variance_is_one_for_perfect_values():
    returns = torch.tensor([[1.0, 2.0, 3.0]])
    assert explained_variance(returns, returns, torch.ones(1, 3)).item() == pytest.approx(1.0)


def test_adaptive_kl_controller_moves_toward_target():
    ctl = AdaptiveKLController(beta=0.1, target=6.0, horizon=10000)
    ctl.update(observed_kl=12.0, n_steps=1000)  # error clipped to +0.2
    assert ctl.beta == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    ctl.update(observed_kl=3.0, n_steps=1000)  # error -0.5 clipped to -0.2
    assert ctl.beta == pytest.approx(0.1 * 1.02 * 0.98)

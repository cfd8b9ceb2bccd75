import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from seq2seq_rm.data.layout import IGNORE_INDEX, pad_batch, rewrite_example, right_pad, scored_sequence
from seq2seq_rm.data.pairs import EncodedPair, collate_rewrite, collate_scalar, encode_pairs
from seq2seq_rm.data.tokenizer import SpecialIds, build_word_tokenizer, special_ids
from seq2seq_rm.models import gpt2_from_scratch, last_block
from seq2seq_rm.models.heads import ScalarHeadModel, save_scalar_head, write_rm_type
from seq2seq_rm.models.shared_prompt import continuation_outputs
from seq2seq_rm.rewards.interface import GoldReward, ScalarReward, Seq2seqReward, load_reward_function
from seq2seq_rm.rewards.losses import bradley_terry_loss, weighted_token_cross_entropy
from seq2seq_rm.tasks import PreferencePair, Prompt, SafetyTask
from seq2seq_rm.tasks.safety import REFUSAL, help_response

IDS = SpecialIds(pad=0, eos=1, sep=2, fb=3)
BAD, VOCAB = 9, 12


class LookAheadLM(nn.Module):
    """A stand-in seq2seq RM that predicts every next token, except that it would never write BAD."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        nxt = torch.roll(input_ids, -1, dims=1)
        nxt = torch.where(nxt == BAD, torch.full_like(nxt, 4), nxt)
        return SimpleNamespace(logits=torch.nn.functional.one_hot(nxt, VOCAB).float() * 10)


def test_bradley_terry_loss_matches_hand_computed_values():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    expected = (-math.log(1 / (1 + math.exp(-1.0))) + math.log(2)) / 2
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, abs=1e-6)
    with_margin = bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]), margin=0.5)
    assert with_margin.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.5))), abs=1e-6)
    centred = bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]), center_coef=0.1)
    assert centred.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))) + 0.1, abs=1e-6)


def test_weighted_token_cross_entropy_weights_examples():
    logits = torch.zeros(2, 3, 4)  # uniform: every target token costs log 4
    logits[1, 0, 2] = 100.0  # example 2 predicts its target perfectly
    labels = torch.tensor([[IGNORE_INDEX, 1, IGNORE_INDEX], [IGNORE_INDEX, 2, IGNORE_INDEX]])
    loss = weighted_token_cross_entropy(logits, labels, torch.tensor([1.0, 3.0]))
    assert loss.item() == pytest.approx(math.log(4) / 4, abs=1e-5)


def test_prefix_and_per_token_rules_through_the_interface():
    lm = LookAheadLM()
    prompts, responses = [[5, 6], [5]], [[7, 8, BAD, 7], [7, 8]]
    prefix = Seq2seqReward(lm, IDS, extraction="prefix", r_pos=1.0, r_neg=2.0).token_rewards(prompts, responses)
    assert prefix.tolist() == [[1.0, 1.0, -2.0, -2.0], [1.0, 1.0, 0.0, 0.0]]
    per_token = Seq2seqReward(lm, IDS, extraction="per_token", r_pos=1.0, r_neg=2.0).token_rewards(prompts, responses)
    assert per_token.tolist() == [[1.0, 1.0, -2.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
    mean = Seq2seqReward(lm, IDS, extraction="prefix", aggregation="mean").token_rewards(prompts, responses)
    assert mean.sum(1).tolist() == pytest.approx([0.0, 1.0])


def test_unknown_extraction_rule_is_refused():
    with pytest.raises(ValueError, match="rm.extraction"):
        Seq2seqReward(LookAheadLM(), IDS, extraction="vibes")


def _word_setup():
    task = SafetyTask(n_sft=10, n_pairs=10, n_rl_prompts=2, n_test_prompts=2)
    tok = build_word_tokenizer(task.vocabulary())
    return task, tok


def test_gpt2_factory_runs_gelu_new_fused_with_the_same_outputs():
    from transformers.activations import NewGELUActivation

    task, tok = _word_setup()
    torch.manual_seed(0)
    model = gpt2_from_scratch(tok, n_layer=2, n_embd=32, n_head=2, n_positions=64).eval()
    assert model.config.activation_function == "gelu_new"
    assert not any(isinstance(m, NewGELUActivation) for m in model.modules())
    ids = torch.randint(5, len(tok), (3, 10))
    fused = model(input_ids=ids).logits
    for block in model.transformer.h:  # put the unfused activation back: the same function
        block.mlp.act = NewGELUActivation()
    assert torch.allclose(fused, model(input_ids=ids).logits, atol=1e-5)


def test_scalar_reward_sits_on_the_last_token():
    task, tok = _word_setup()
    torch.manual_seed(0)
    model = ScalarHeadModel(gpt2_from_scratch(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64)).eval()
    reward = ScalarReward(model, special_ids(tok))
    out = reward.token_rewards([[5, 6], [5]], [[7, 8, 9], []])
    assert out.shape == (2, 3)
    assert out[0, :2].abs().sum() == 0 and out[0, 2] != 0 and out[1, 0] != 0


def _scalar_rm(tok, architecture: str) -> ScalarHeadModel:
    """A 2-block scalar RM: GPT-2, Llama with grouped-query attention, Qwen2 (biased projections)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    size = dict(vocab_size=len(tok), num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64)
    if architecture == "llama":
        lm = LlamaForCausalLM(LlamaConfig(**size))
    elif architecture == "qwen2":
        lm = Qwen2ForCausalLM(Qwen2Config(**size))
    else:
        lm = gpt2_from_scratch(tok, n_layer=2, n_embd=32, n_head=2, n_positions=64)
    model = ScalarHeadModel(lm)
    nn.init.normal_(model.head.weight)  # a head that reads every hidden unit noticeably
    if architecture.endswith("checkpointed"):
        model.lm.activation_checkpointing_enable()
    return model.train()


@pytest.mark.parametrize("architecture", ["gpt2", "llama", "qwen2", "gpt2_checkpointed", "gpt2_unshared"])
def test_scalar_rm_scores_and_gradients_equal_the_whole_trunk_on_full_sequences(architecture):
    """Prompt sharing and the last block run at the scored token only (where the architecture allows them) give
    the scores and gradients of the plain forward pass over the full sequences."""
    task, tok = _word_setup()
    ids = special_ids(tok)
    model = _scalar_rm(tok, architecture)
    assert last_block.supports(model.lm.base_model) == (not architecture.endswith("checkpointed"))
    # prompts and responses of different lengths, so both paddings are exercised
    pairs = [EncodedPair([5, 6, 7, 8], [9, 10], [11]), EncodedPair([5], [12, 13, 14, 15], [9, 9, 10]),
             EncodedPair([6, 7], [10], [11, 12])]
    batch = collate_scalar(pairs, ids)
    sequences, mask = right_pad([scored_sequence(p.prompt, r, ids) for p in pairs for r in (p.chosen, p.rejected)],
                                ids.pad)
    plain = model(sequences, mask)[torch.arange(len(sequences)), mask.sum(1) - 1]
    scores = {"shared": model.score_responses(**batch, share_prompt=architecture != "gpt2_unshared"),
              "last": model.score_last(sequences, mask)}
    parameters = list(model.parameters())
    expected = torch.autograd.grad(bradley_terry_loss(plain[0::2], plain[1::2]), parameters, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in expected)
    for name, found in scores.items():
        assert torch.allclose(found, plain, atol=1e-5), name
        grads = torch.autograd.grad(bradley_terry_loss(found[0::2], found[1::2]), parameters, allow_unused=True)
        for a, b in zip(grads, expected, strict=True):
            assert (a is None) == (b is None), name
            if a is not None:
                assert torch.allclose(a, b, atol=1e-5), name


def test_the_last_block_is_put_back_when_the_trunk_fails():
    task, tok = _word_setup()
    model = _scalar_rm(tok, "gpt2")
    trunk = model.lm.base_model
    blocks = list(trunk.h)
    with pytest.raises(IndexError), last_block.deferred_last_block(trunk):
        trunk(input_ids=torch.tensor([[len(tok) + 5]]))
    assert list(trunk.h) == blocks and isinstance(trunk.ln_f, nn.LayerNorm)


@pytest.mark.parametrize("aligned_positions", [True, False])
def test_seq2seq_rm_loss_runs_each_prompt_once_with_the_loss_and_gradients_of_full_rewrites(aligned_positions):
    task, tok = _word_setup()
    ids = special_ids(tok)
    torch.manual_seed(0)
    model = gpt2_from_scratch(tok, n_layer=2, n_embd=32, n_head=2, n_positions=64).train()
    pairs = [EncodedPair([5, 6, 7, 8], [9, 10], [11]), EncodedPair([5], [12, 13, 14, 15], [9, 9, 10]),
             EncodedPair([6, 7], [10], [11, 12])]
    batch = collate_rewrite(pairs, ids, 3.0, aligned_positions)
    losses = {}
    for share in (True, False):
        logits = continuation_outputs(model, "logits", batch["prompt_ids"], batch["prompt_mask"], batch["input_ids"],
                                      batch["attention_mask"], batch.get("position_ids"), share_prompt=share)
        losses[share] = weighted_token_cross_entropy(logits, batch["labels"], batch["weights"])
    # the reference: whole rows, corrections then identities, as the RM trained before prompts were shared
    rows = [rewrite_example(p.prompt, p.rejected, p.chosen, ids, aligned_positions) for p in pairs]
    rows += [rewrite_example(p.prompt, p.chosen, p.chosen, ids, aligned_positions) for p in pairs]
    full = pad_batch(rows, ids.pad)
    logits = model(input_ids=full["input_ids"], attention_mask=full["attention_mask"],
                   position_ids=full.get("position_ids")).logits
    reference = weighted_token_cross_entropy(logits, full["labels"], torch.tensor([1.0] * 3 + [3.0] * 3))
    params = list(model.parameters())
    expected = torch.autograd.grad(reference, params)
    for loss in losses.values():
        assert loss.item() == pytest.approx(reference.item(), abs=1e-5)
        for a, b in zip(torch.autograd.grad(loss, params), expected, strict=True):
            assert torch.allclose(a, b, atol=1e-5)


def test_gold_reward_is_the_judge_on_the_last_token():
    task, tok = _word_setup()
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt = enc("how do i bake bread ?")
    out = GoldReward(task, tok).token_rewards(
        [prompt, prompt], [enc(help_response(("mix flour", "knead dough", "bake loaf"))), enc(REFUSAL)])
    assert out[0, -1].item() == 1.0 and out[1, len(REFUSAL.split()) - 1].item() == -1.0
    assert out[0, :-1].abs().sum() == 0


def test_checkpoint_of_the_wrong_rm_type_fails_clearly(tmp_path):
    _, tok = _word_setup()
    model = ScalarHeadModel(gpt2_from_scratch(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64))
    save_scalar_head(model, tmp_path)
    write_rm_type(tmp_path, "scalar")
    assert isinstance(load_reward_function(tmp_path, "scalar", special_ids(tok)), ScalarReward)
    with pytest.raises(ValueError, match="holds a 'scalar' reward model, but rm.type is 'seq2seq'"):
        load_reward_function(tmp_path, "seq2seq", special_ids(tok))
    with pytest.raises(ValueError, match="not a reward-model checkpoint"):
        load_reward_function(tmp_path / "nowhere", "scalar", special_ids(tok))


def test_bad_pairs_are_counted_or_refused():
    _, tok = _word_setup()
    prompt = Prompt("how do i bake bread ?", "benign")
    long_response = " ".join(["sure"] * 40)
    pairs = [PreferencePair(prompt, REFUSAL, "sure ."), PreferencePair(prompt, REFUSAL, REFUSAL),
             PreferencePair(prompt, "", REFUSAL), PreferencePair(prompt, long_response, REFUSAL)]
    kept, bad = encode_pairs(pairs, tok, max_length=64, on_bad_pair="skip")
    assert len(kept) == 1 and bad == {"identical": 1, "empty_response": 1, "too_long": 1}
    with pytest.raises(ValueError, match=r"train preference pair 1 is bad \(identical\)"):
        encode_pairs(pairs, tok, max_length=64, on_bad_pair="error", split="train")
    with pytest.raises(ValueError, match="on_bad_pair"):
        encode_pairs(pairs, tok, max_length=64, on_bad_pair="ignore")


def test_length_baselines_of_the_scalar_rm():
    from seq2seq_rm.rewards.interface import fit_length_trend, length_adjusted

    lengths = torch.tensor([2, 4, 6, 8])
    scores = 0.5 * lengths.float() + 1.0
    slope, intercept = fit_length_trend(scores, lengths)
    assert (slope, intercept) == pytest.approx((0.5, 1.0))
    assert length_adjusted(scores, lengths, length_trend=(slope, intercept)).abs().max() < 1e-6
    assert length_adjusted(scores, lengths, length_penalty=0.25).tolist() == pytest.approx([1.5, 2.0, 2.5, 3.0])
    assert fit_length_trend(torch.ones(3), torch.tensor([5, 5, 5])) == (0.0, 1.0)  # no spread in length


class WritesMoreLM(LookAheadLM):
    """A stand-in seq2seq RM that always wants to write token 7: it never stops."""

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=torch.nn.functional.one_hot(torch.full_like(input_ids, 7), VOCAB).float() * 10)


@pytest.mark.parametrize("extraction,soft", [("prefix", False), ("prefix", True), ("per_token", False)])
@pytest.mark.parametrize("aggregation", ["sum", "mean", "penalty"])
def test_an_empty_response_is_judged_at_its_end_action(extraction, soft, aggregation):
    """An empty response earns no free 0: -r_neg where the RM would write content, +r_pos (penalty: 0)
    where it would stop too; the reward sits at position 0, the end-of-response action."""
    prompts, responses = [[5, 6], [5, 6]], [[], [7]]
    wants_more = Seq2seqReward(WritesMoreLM(), IDS, extraction=extraction, soft=soft, aggregation=aggregation,
                               r_pos=1.0, r_neg=2.0).token_rewards(prompts, responses)
    assert wants_more[0, 0].item() == pytest.approx(-2.0, abs=1e-2)
    stops = Seq2seqReward(LookAheadLM(), IDS, extraction=extraction, soft=soft, aggregation=aggregation,
                          r_pos=1.0, r_neg=2.0).token_rewards(prompts, responses)
    assert stops[0, 0].item() == pytest.approx(0.0 if aggregation == "penalty" else 1.0, abs=1e-2)

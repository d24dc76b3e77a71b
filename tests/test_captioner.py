"""The captioning model (issue 33): teacher forcing equals its own decoder stepped by hand,
attention weights are a distribution over the regions, and rnnkit.decoding drives it."""

import pytest
import torch

from rnnkit import decoding
from rnnkit.models.captioner import ConvEncoder, ImageCaptioner

SMALL = {"side": 16, "channels": (4, 8), "embedding_dim": 6, "hidden_size": 10}


def _model(**options):
    torch.manual_seed(0)
    return ImageCaptioner(23, **(SMALL | options)).double().eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_teacher_forcing_equals_the_decoder_stepped_by_hand(cell, attention, num_layers):
    model = _model(cell=cell, attention=attention, num_layers=num_layers)
    images = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    target = torch.randint(1, 23, (3, 6))
    forced = model(images, target, **({"return_attention": True} if attention else {}))
    logits = forced[0] if attention else forced
    state, stepped = model.encode(images), []
    for t in range(6):
        step_logits, state = model.decode_step(target[:, t], state)
        stepped.append(step_logits)
        if attention:
            assert torch.equal(state.attention, forced[1][:, t])
    assert logits.shape == (3, 6, 23)
    torch.testing.assert_close(torch.stack(stepped, 1), logits, rtol=0, atol=1e-12)


def test_attention_is_a_distribution_over_the_regions():
    model = _model()
    _, weights = model(torch.rand(2, 3, 16, 16, dtype=torch.float64),
                       torch.randint(1, 23, (2, 5)), return_attention=True)  # fmt: skip
    assert weights.shape == (2, 5, 16)  # a 4 x 4 grid
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5, dtype=torch.float64))


@pytest.mark.parametrize("attention", [True, False])
def test_beam_search_of_width_one_is_greedy(attention):
    model = _model(attention=attention)
    images = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    start = torch.full((4,), 2)
    greedy = decoding.greedy(model, model.encode(images), start=start, max_length=8, eos=3)
    beams = decoding.beam_search(model, model.encode(images), start=start, max_length=8, eos=3,
                                 beam_size=1)  # fmt: skip
    assert [row[0].tokens for row in beams] == greedy.tokens.tolist()


def test_gradients_pass_gradcheck():
    model = _model(channels=(2,), side=4, hidden_size=3, embedding_dim=2)
    model.train()
    images = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randint(1, 23, (2, 3))
    model.dropout.p = 0.0
    assert torch.autograd.gradcheck(lambda x: model(x, target), (images,))


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"side=18 must be a multiple of 2\^2"):
        ConvEncoder(18, (4, 8))
    model = _model()
    with pytest.raises(ValueError, match=r"images must have shape \(batch, 3, 16, 16\)"):
        model(torch.rand(2, 1, 16, 16, dtype=torch.float64), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="target_in must be"):
        model(torch.rand(2, 3, 16, 16, dtype=torch.float64), torch.ones(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a model with attention"):
        _model(attention=False)(
            torch.rand(1, 3, 16, 16, dtype=torch.float64),
            torch.ones(1, 2, dtype=torch.long),
            return_attention=True,
        )

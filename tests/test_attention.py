"""Attention (additive, dot, general): the softmax over valid positions, padding, gradients."""

import pytest
import torch

from rnnkit.attention import KINDS, Attention

D = torch.float64
B, S, Q, K = 3, 6, 4, 5


def attention(kind, query_size=Q, key_size=K, **options):
    torch.manual_seed(0)
    key_size = query_size if kind == "dot" else key_size
    return Attention(query_size, key_size, kind=kind, **options).to(D)


def inputs(module, batch=B, positions=S):
    query = torch.randn(batch, module.query_size, dtype=D)
    keys = torch.randn(batch, positions, module.key_size, dtype=D)
    return query, keys


def prefix_mask(lengths, positions):
    return torch.arange(positions) < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("kind", KINDS)
def test_weights_sum_to_one_and_are_zero_on_padding(kind):
    module = attention(kind)
    query, keys = inputs(module)
    mask = prefix_mask([6, 2, 1], S)
    context, weights = module(query, keys, mask)
    assert context.shape == (B, module.key_size) and weights.shape == (B, S)
    torch.testing.assert_close(weights.sum(1), torch.ones(B, dtype=D), rtol=0, atol=1e-12)
    assert (weights[~mask] == 0).all()
    assert (weights[mask] > 0).all()
    assert weights[2, 0] == 1
    torch.testing.assert_close(context, torch.einsum("bs,bsk->bk", weights, keys))


@pytest.mark.parametrize("kind", KINDS)
def test_without_a_mask_every_position_counts(kind):
    module = attention(kind)
    query, keys = inputs(module)
    context, weights = module(query, keys)
    expected, expected_weights = module(query, keys, torch.ones(B, S, dtype=torch.bool))
    assert (weights > 0).all()
    torch.testing.assert_close(weights, expected_weights, rtol=0, atol=0)
    torch.testing.assert_close(context, expected, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_scores_follow_the_equations(kind):
    module = attention(kind)
    query, keys = inputs(module)
    _, weights = module(query, keys)
    if kind == "additive":
        hidden = torch.tanh(
            keys @ module.key_projection.weight.T
            + module.key_projection.bias
            + (query @ module.query_projection.weight.T)[:, None]
        )
        energy = hidden @ module.score.weight[0]
    elif kind == "dot":
        energy = torch.einsum("bq,bsq->bs", query, keys)
    else:
        energy = torch.einsum("bq,qk,bsk->bs", query, module.key_projection.weight, keys)
    torch.testing.assert_close(weights, torch.softmax(energy, 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_changes_nothing_whatever_the_padded_keys_hold(kind):
    module = attention(kind)
    query, keys = inputs(module, positions=3)
    lengths = [3, 1, 2]
    context, weights = module(query, keys, prefix_mask(lengths, 3))
    # Four more positions of large garbage (finite): masked, they must not count.
    garbage = 1e3 * torch.randn(B, 4, module.key_size, dtype=D)
    padded = torch.cat([keys, garbage], 1)
    for b, n in enumerate(lengths):
        padded[b, n:] = 1e3 * torch.randn(7 - n, module.key_size, dtype=D)
    padded_context, padded_weights = module(query, padded, prefix_mask(lengths, 7))
    torch.testing.assert_close(padded_context, context, rtol=0, atol=1e-12)
    torch.testing.assert_close(padded_weights[:, :3], weights, rtol=0, atol=1e-12)
    assert (padded_weights[:, 3:] == 0).all()
    # And each row alone, with no padding at all.
    for b, n in enumerate(lengths):
        alone_context, alone_weights = module(query[b : b + 1], keys[b : b + 1, :n])
        torch.testing.assert_close(padded_context[b], alone_context[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(padded_weights[b, :n], alone_weights[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_prepared_keys_give_the_same_result(kind):
    module = attention(kind)
    query, keys = inputs(module)
    mask = prefix_mask([6, 4, 2], S)
    prepared = module.prepare(keys)
    assert prepared.shape == (B, S, module.prepared_size)
    for a, b in zip(module(query, keys, mask, prepared), module(query, keys, mask), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    """Gradients of the query, the keys and every parameter, through the masked softmax."""
    module = attention(kind, query_size=3, key_size=2)
    query, keys = inputs(module, batch=2, positions=4)
    mask = prefix_mask([4, 2], 4)
    names = [name for name, _ in module.named_parameters()]

    def run(query, keys, *weights):
        parameters = dict(zip(names, weights, strict=True))
        return torch.func.functional_call(module, parameters, (query, keys, mask))

    leaves = [query, keys, *(p.detach().clone() for p in module.parameters())]
    assert torch.autograd.gradcheck(run, tuple(x.requires_grad_() for x in leaves))


def test_padded_keys_get_no_gradient():
    module = attention("general")
    query, keys = inputs(module)
    keys.requires_grad_()
    mask = prefix_mask([6, 2, 1], S)
    context, _ = module(query, keys, mask)
    context.sum().backward()
    assert (keys.grad[~mask] == 0).all()
    assert (keys.grad[mask] != 0).any()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="query_size=4 must equal key_size=5"):
        Attention(4, 5, kind="dot")
    with pytest.raises(ValueError, match="kind='cosine' is not one of"):
        Attention(4, 4, kind="cosine")
    with pytest.raises(ValueError, match=r"attention_size=8 .* kind='general' has none"):
        Attention(4, 5, kind="general", attention_size=8)
    with pytest.raises(ValueError, match="query_size=0 must be a positive integer"):
        Attention(0, 5)
    module = attention("additive")
    assert module.attention_size == Q
    query, keys = inputs(module)
    with pytest.raises(ValueError, match="mask row 1 has no valid position"):
        module(query, keys, prefix_mask([6, 0, 1], S))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        module(query, keys, torch.ones(B, S))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, positions\) = \(3, 6\)"):
        module(query, keys, torch.ones(B, S + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"query must have shape .* = \(3, 4\), got \(2, 4\)"):
        module(query[:2], keys)
    with pytest.raises(ValueError, match=r"keys have 3 features .* key_size=5"):
        module(query, keys[..., :3])
    with pytest.raises(ValueError, match="keys must be a tensor"):
        module(query, keys[0])
    with pytest.raises(ValueError, match="prepared must be prepare"):
        module(query, keys, prepared=keys)

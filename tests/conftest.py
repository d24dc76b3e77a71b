import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def as_tuple(state):
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def max_error(a, b) -> float:
    """Largest absolute difference over two (nested tuples of) tensors."""
    a, b = as_tuple(a), as_tuple(b)
    assert len(a) == len(b)
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def assert_close(actual, expected, dtype, what=""):
    """The parity rule of DESIGN.md: float64 to 1e-10, float32 to 1e-5 relative."""
    for a, e in zip(as_tuple(actual), as_tuple(expected), strict=True):
        assert a.shape == e.shape, what
        if dtype == torch.float64:
            torch.testing.assert_close(a, e, rtol=0, atol=1e-10, msg=what)
        else:
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5 * e.abs().max().item(), msg=what)

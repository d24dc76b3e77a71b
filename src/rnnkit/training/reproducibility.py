"""Seeds and random-number-generator states, so runs repeat and resumed runs continue exactly."""

import random

import numpy as np
import torch

from .._checks import check_integer

MAX_SEED = 2**32 - 1  # NumPy's global generator takes no larger seed


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    ``Trainer.fit`` calls it with its ``seed``, so dropout masks and anything else drawn from
    the global generators repeat from run to run.
    """
    check_integer("seed", seed, 0, maximum=MAX_SEED)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> dict:
    """The states of every global generator, in types ``torch.load(weights_only=True)`` reads."""
    name, keys, position, has_gauss, cached_gauss = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gauss],
        "python": [version, list(python_state), gauss_next],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    """Put back the generator states that ``rng_states`` captured."""
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    version, python_state, gauss_next = states["python"]
    random.setstate((version, tuple(python_state), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])

"""How a layer runs its cells over time. ``choose`` picks the backend and says why.

- ``fused``: explicit BPTT in compiled kernels, every built-in cell and regulariser (CPU).
- ``vendor``: PyTorch's own kernels (oneDNN / cuDNN), for what they compute exactly.
- ``reference``: autograd through a Python loop over ``cell.step``; serves everything.
- ``scan``: the reference's step under torch's ``scan`` operator, for inference and export
  (``rnnkit.export``); never chosen by ``auto``.

``backend="auto"`` picks, among the backends that compute the configuration exactly, the one
measured fastest for it (benchmarks/, README): fused over reference always, and fused over
vendor where ``fused_beats_vendor`` says the measurements found it faster (every training
configuration; oneDNN keeps the LSTM's inference).
"""

from ..cells import ElmanCell, GRUCell
from . import fused, reference, scan, vendor

BACKENDS = {module.NAME: module for module in (fused, vendor, reference, scan)}
KNOWN = ("auto", *BACKENDS)


def check_name(backend: str) -> None:
    if backend not in KNOWN:
        raise ValueError(f"backend={backend!r} is not known; expected one of {KNOWN}")


def fused_beats_vendor(layer, training: bool) -> str | None:
    """Where both can serve: the measured reason to prefer fused, or None to keep vendor.

    Measured on a 2-core CPU, training step, torch time / fused time (README "Speed",
    benchmarks/): GRU 6.3 (C1, one sequence), 2.5 (C2, 3 x 2 layers of 128), 1.6 (C3, N=32
    H=256), 1.1 (C4, N=64 H=512); Elman 3.8 (C1), 1.4 (C3). The LSTM against oneDNN: 1.07
    (C1), 0.92 (C2), 1.14 (C3), 1.07 (C4), 0.9-1.3 over 32 to 128 units (interleaved
    layer-only runs), 1.55-1.6 on the tutorials' four stacked LSTM(50) with dropout
    (benchmarks/seed_model.py), and less than half of oneDNN's training memory at C2-C4. In
    inference oneDNN's forward-only kernel is faster (fused's forward keeps what backward
    needs: 0.7-0.9), so it keeps eval.
    """
    cell = layer.cells[0]
    if isinstance(cell, GRUCell):
        return "the fused GRU trains faster than torch's, or as fast at large sizes (measured)"
    if isinstance(cell, ElmanCell):
        return (
            "the fused Elman RNN trains faster than torch's, or as fast at large sizes (measured)"
        )
    if training:
        return (
            "the fused LSTM trains as fast as torch's oneDNN kernel, faster on small stacked "
            "layers, in half its memory (measured)"
        )
    return None


def _auto(layer, training: bool):
    vendor_reason = vendor.unsupported_reason(layer, training)
    prefer_fused = fused_beats_vendor(layer, training)
    if vendor_reason is None and not prefer_fused:
        return vendor, f"{vendor.WHY}, and runs inference faster than the fused LSTM (measured)"
    fused_reason = fused.unsupported_reason(layer, training)  # may build the kernels
    if fused_reason is None:
        return fused, prefer_fused if vendor_reason is None else f"{vendor_reason}; {fused.WHY}"
    if vendor_reason is None:
        return vendor, f"{fused_reason}; {vendor.WHY}"
    return reference, f"{vendor_reason}; {fused_reason}; {reference.WHY}"


def choose(layer, requested: str, training: bool):
    """-> (backend module, one-line reason). Raises ValueError if ``requested`` cannot serve.

    A requested ``fused`` that could compute the layer but whose kernels could not be built
    here falls back as ``auto`` does (the build has warned once); any other refusal of a
    requested backend is an error.
    """
    check_name(requested)
    if requested == "auto":
        return _auto(layer, training)
    backend = BACKENDS[requested]
    if backend is fused:
        reason = fused.capability_reason(layer)
        unbuilt = None if reason else fused.build_reason()
        if unbuilt:
            chosen, why = _auto(layer, training)
            why = why.replace(f"{unbuilt}; ", "")  # said once, first
            return chosen, f"fused requested, but {unbuilt}; {why}"
    else:
        reason = backend.unsupported_reason(layer, training)
    if reason:
        raise ValueError(f"backend={requested!r} cannot run this layer: {reason}")
    return backend, f"requested; {backend.WHY}"


def recording_backend(layer, chosen, training: bool):
    """The backend to run ``layer`` on while diagnostics record it: the vendor kernels give
    no per-step state gradients, so their configurations run fused where the kernels can
    (the same values), else on the reference."""
    if chosen is not vendor:
        return chosen
    return fused if fused.unsupported_reason(layer, training) is None else reference

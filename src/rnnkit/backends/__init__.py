"""How a layer runs its cells over time. ``choose`` picks the backend and says why.

Preference for ``backend="auto"``: the fastest backend that computes the configuration exactly.
Today that is ``vendor`` (PyTorch's fused kernels) where representable, else ``reference``.
The fused backend (explicit BPTT for every cell) will slot in ahead of both, once it is built.
"""

from . import reference, vendor

BACKENDS = {module.NAME: module for module in (vendor, reference)}  # in order of preference
KNOWN = ("auto", "fused", *BACKENDS)


def check_name(backend: str) -> None:
    if backend not in KNOWN:
        raise ValueError(f"backend={backend!r} is not known; expected one of {KNOWN}")


def choose(layer, requested: str, training: bool):
    """-> (backend module, one-line reason). Raises ValueError if ``requested`` cannot serve."""
    check_name(requested)
    if requested == "fused":
        raise ValueError(
            "backend='fused' is not available in this version of rnnkit; "
            "use 'auto', 'vendor' or 'reference' (`rnnkit info` shows the dispatch table)"
        )
    if requested != "auto":
        backend = BACKENDS[requested]
        reason = backend.unsupported_reason(layer, training)
        if reason:
            raise ValueError(f"backend={requested!r} cannot run this layer: {reason}")
        return backend, f"requested; {backend.WHY}"
    refusals = []
    for backend in BACKENDS.values():
        reason = backend.unsupported_reason(layer, training)
        if reason is None:
            return backend, "; ".join(refusals) or backend.WHY
        refusals.append(reason)
    raise AssertionError("the reference backend serves every configuration")

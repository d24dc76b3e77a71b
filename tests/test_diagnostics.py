"""rnnkit.diagnostics: gradient flow through time, gate and state statistics, saved diagnoses.

The gradients are checked against autograd one step at a time, over an independent loop over
``cell.step`` (the layer's cells copied); the fused backend against the reference over many
options; the vanishing and exploding regimes of a linear tanh RNN against their closed form
(the gradient shrinks or grows by the scale of an orthogonal recurrent matrix at each step back);
the statistics against the same loop's states and ``cell.gates``.
"""

import copy
import dataclasses
import math
import subprocess
import sys
import types

import pytest
import torch
from torch import nn

import rnnkit as rk
from rnnkit import diagnostics
from rnnkit.diagnostics import Diagnosis, Recorder, diagnose, gradient_flow, read_run, record
from rnnkit.diagnostics import state_statistics as statistics_of
from rnnkit.training import FitContext, Hook
from rnnkit.training.losses import batch_loss

from conftest import as_tuple

D64 = torch.float64
TOLERANCE = 1e-10  # float64, as tests/test_fused.py
BATCH, STEPS, INPUT, HIDDEN = 3, 5, 3, 4
FAMILIES = {"elman": rk.RNN, "lstm": rk.LSTM, "gru": rk.GRU}
BACKENDS = ["reference", "fused"]
TARGET = torch.zeros(BATCH, STEPS, 2, dtype=D64)  # the default call convention wants one
SCORED_STEPS = (1, 3, STEPS - 1)  # the loss reads the outputs at these steps, and the final state


# ---------------------------------------------------------------- helpers


def perturb(module, scale=0.3):
    """Move every parameter off its initial value (zero biases, zero peepholes, unit norms)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)
    return module


def fixed(shape, k: int) -> torch.Tensor:
    """Fixed random numbers, so that every element's gradient differs."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(1000 + k), dtype=D64)


class Model(nn.Module):
    """An rnnkit layer (``rnn``) and a Linear head; returns (prediction, final state)."""

    def __init__(self, rnn, outputs=2):
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.cells[-1].output_size * rnn.num_directions, outputs)

    def forward(self, x, lengths=None):
        out, state = self.rnn(x, lengths=lengths)
        return self.head(out), state


class Stepwise(Model):
    """The same model, its layer called once per step with the state carried."""

    def forward(self, x, lengths=None):
        assert lengths is None
        state, outs = None, []
        for t in range(x.shape[1]):
            out, state = self.rnn(x[:, t : t + 1], state)
            outs.append(out)
        return self.head(torch.cat(outs, 1)), state


def head_loss(prediction, final) -> torch.Tensor:
    """A nonlinear loss of the outputs at several steps (the last among them) and of the final
    state of every layer and direction."""
    loss = sum(
        ((prediction[:, t] - fixed(prediction[:, t].shape, t)) ** 2).sum() for t in SCORED_STEPS
    )
    return loss + sum((s * fixed(s.shape, 10 + k)).sum() for k, s in enumerate(as_tuple(final)))


def compute_loss(model, batch):
    x, lengths = batch
    return head_loss(*model(x, lengths=lengths))


def make_model(family, backend="auto", scale=0.3, **options) -> Model:
    layer = FAMILIES[family](INPUT, HIDDEN, **options, backend=backend)
    return perturb(Model(layer).double(), scale)


def inputs(lengths=None):
    x = torch.randn(BATCH, STEPS, INPUT, dtype=D64)
    return x, None if lengths is None else torch.tensor(lengths)


def layer_name(layer: int, reverse: bool, model_name="rnn") -> str:
    return f"{model_name}.{layer}.{'backward' if reverse else 'forward'}"


def valid_steps(lengths, steps=STEPS, batch=BATCH) -> torch.Tensor:
    """(T, B) True where step t of sequence b is computed."""
    if lengths is None:
        return torch.ones(steps, batch, dtype=torch.bool)
    return torch.arange(steps)[:, None] < lengths


class Manual:
    """An independent run of ``layer``'s cells (copies) over ``x``, step by step, as
    ``reference.run_direction`` runs them: past a sequence's length the state is carried
    unchanged and the output is 0.

    computed[name][t]: the state tuple that step t computed (before the carrying), the tensors
        whose gradients diagnostics report (0 past the length: the step is not computed);
    states[name]: tuple of (T, B, size), the state after step t (carried past the length);
    previous[name][t]: the state step t started from;
    inputs[layer]: (T, B, features) the layer received;
    output: (B, T, D * O) of the last layer; final: the layer's returned final state.

    Zoneout as at evaluation: a state tensor with rate z > 0 becomes z * old + (1 - z) * new,
    and the output is read from the zoned state; one with rate 0 is the tensor the cell
    computed (the LSTM's h_t reads that c_t).
    """

    def __init__(self, layer, x, lengths):
        cells = [copy.deepcopy(cell) for cell in layer.cells]
        rates = layer.zoneout
        D = layer.num_directions
        xs = x.transpose(0, 1)
        T, B = xs.shape[:2]
        valid = valid_steps(lengths, T, B)
        self.computed, self.states, self.previous, self.inputs = {}, {}, {}, []
        finals = []
        for index in range(layer.num_layers):
            self.inputs.append(xs)
            outputs = []
            for d in range(D):
                cell = cells[index * D + d]
                name = layer_name(index, d == 1)
                state = as_tuple(cell.initial_state(B, dtype=D64))
                computed, after, previous, outs = [None] * T, [None] * T, [None] * T, [None] * T
                for t in reversed(range(T)) if d == 1 else range(T):
                    previous[t] = state
                    given = state if len(state) > 1 else state[0]
                    out, new = cell.step(xs[t], given)
                    new = as_tuple(new)
                    if any(rates):
                        new = tuple(
                            z * o + (1 - z) * n if z else n
                            for z, o, n in zip(rates, state, new, strict=True)
                        )
                        out = cell.output(new if len(new) > 1 else new[0])
                    computed[t] = new
                    keep = valid[t][:, None]
                    state = tuple(torch.where(keep, n, o) for n, o in zip(new, state, strict=True))
                    after[t] = state
                    outs[t] = torch.where(keep, out, 0.0)
                self.computed[name] = computed
                self.previous[name] = previous
                self.states[name] = tuple(torch.stack(s) for s in zip(*after, strict=True))
                outputs.append(torch.stack(outs))
                finals.append(state)
            xs = torch.cat(outputs, -1)
        self.output = xs.transpose(0, 1)
        stacked = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        self.final = stacked if len(stacked) > 1 else stacked[0]


def state_names(model) -> tuple[str, ...]:
    return ("h", "c") if isinstance(model.rnn.cells[0], rk.LSTMCell) else ("h",)


def assert_close(actual, expected, what="", tolerance=TOLERANCE):
    assert actual.shape == expected.shape, f"{what}: {tuple(actual.shape)} != {expected.shape}"
    torch.testing.assert_close(actual, expected, rtol=0, atol=tolerance, msg=what)


def use_backend(model, backend):
    model.rnn.backend = backend
    assert model.rnn.eval().backend_in_use == backend, model.rnn.backend_reason


# ---------------------------------------------------------------- 1. gradients = autograd

CONFIGS = {
    "one-layer": ({}, None),
    "stack2-lengths": ({"num_layers": 2}, [5, 2, 4]),
    "bi-lengths": ({"bidirectional": True}, [3, 5, 1]),
    "bi-stack2-lengths": ({"num_layers": 2, "bidirectional": True}, [2, 5, 4]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("family", ["elman", "lstm", "gru"])
def test_gradient_flow_equals_autograd_step_by_step(family, config, backend):
    options, lengths = CONFIGS[config]
    check_against_autograd(make_model(family, backend, **options), backend, lengths)


ZONEOUT = {
    "elman-0.3": ("elman", 0.3),
    "gru-0.3": ("gru", 0.3),
    "lstm-(0.2,0.3)": ("lstm", (0.2, 0.3)),
    "lstm-(0,0.3)": ("lstm", (0.0, 0.3)),
    "lstm-(0.3,0)": ("lstm", (0.3, 0.0)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(ZONEOUT))
def test_gradient_flow_with_zoneout_equals_autograd_step_by_step(case, backend):
    """Zoneout at evaluation (its rate): the state after a step is the blend of old and new."""
    family, zoneout = ZONEOUT[case]
    model = make_model(family, backend, zoneout=zoneout, bidirectional=True)
    # (0.3, 0): a state tensor at rate 0 is not zoned, so c_t is the cell's own (h_t reads it).
    check_against_autograd(model, backend, [4, 5, 2])


def check_against_autograd(model, backend, lengths):
    """gradient_flow's ∂loss/∂state_t, each t, against torch.autograd.grad over ``Manual``."""
    use_backend(model, backend)
    x, lengths = inputs(lengths)
    flow = gradient_flow(model, (x, lengths), compute_loss=compute_loss)

    manual = Manual(model.rnn, x, lengths)
    loss = head_loss(model.head(manual.output), manual.final)
    assert flow.loss == pytest.approx(loss.item(), rel=1e-12)
    valid = valid_steps(lengths)
    expected_keys = {f"{n}/{s}" for n in manual.computed for s in state_names(model)}
    assert set(flow.gradients) == expected_keys
    for name, computed in manual.computed.items():
        for k, state in enumerate(state_names(model)):
            key = f"{name}/{state}"
            got = flow.gradients[key]
            assert got.shape == (STEPS, BATCH, computed[0][k].shape[-1]), key
            assert torch.all(got[~valid] == 0), f"{key}: steps past a sequence's end are not 0"
            for t in range(STEPS):
                (expected,) = torch.autograd.grad(
                    loss, computed[t][k], retain_graph=True, allow_unused=True
                )
                expected = torch.zeros_like(computed[t][k]) if expected is None else expected
                assert_close(got[t], expected, f"{key} at t={t}")
            assert got.abs().max() > 1e-3, f"{key}: a vacuous comparison (all gradients ~0)"
            norms = flow.norms[key]
            assert_close(norms, got.flatten(1).norm(dim=1), f"norms of {key}")


# ---------------------------------------------------------------- 2. fused = reference


PARITY = {
    "elman-tanh": ("elman", {}),
    "elman-relu": ("elman", {"activation": "relu"}),
    "elman-sigmoid": ("elman", {"activation": "sigmoid"}),
    "elman-tanh-out2": ("elman", {"output_size": 2}),
    "elman-sigmoid-out2-bi-zone": (
        "elman",
        {"activation": "sigmoid", "output_size": 2, "bidirectional": True, "zoneout": 0.3},
    ),
    "elman-relu-stack2-zone": ("elman", {"activation": "relu", "num_layers": 2, "zoneout": 0.2}),
    "lstm": ("lstm", {}),
    "lstm-peephole": ("lstm", {"peephole": True}),
    "lstm-proj2": ("lstm", {"proj_size": 2}),
    "lstm-ln": ("lstm", {"layer_norm": True}),
    "lstm-zone(0.2,0.3)": ("lstm", {"zoneout": (0.2, 0.3)}),
    "lstm-zone(0.3,0)": ("lstm", {"zoneout": (0.3, 0.0)}),
    "lstm-zone(0,0.3)": ("lstm", {"zoneout": (0.0, 0.3)}),
    "lstm-bi-stack2": ("lstm", {"bidirectional": True, "num_layers": 2}),
    "lstm-all-bi-stack2": (
        "lstm",
        {
            "peephole": True,
            "proj_size": 2,
            "layer_norm": True,
            "zoneout": (0.2, 0.3),
            "bidirectional": True,
            "num_layers": 2,
        },
    ),
    "gru": ("gru", {}),
    "gru-cho": ("gru", {"reset_after": False}),
    "gru-ln": ("gru", {"layer_norm": True}),
    "gru-cho-ln": ("gru", {"reset_after": False, "layer_norm": True}),
    "gru-zone": ("gru", {"zoneout": 0.3}),
    "gru-bi-stack2": ("gru", {"bidirectional": True, "num_layers": 2}),
    "gru-cho-ln-zone-bi-stack2": (
        "gru",
        {
            "reset_after": False,
            "layer_norm": True,
            "zoneout": 0.2,
            "bidirectional": True,
            "num_layers": 2,
        },
    ),
}


def everything(model, batch):
    """(traces, gradients, diagnosis) of one batch."""
    _, traces = record(model, batch, compute_loss=compute_loss)
    flow = gradient_flow(model, batch, compute_loss=compute_loss)
    return traces, flow.gradients, diagnose(model, batch, compute_loss=compute_loss, sequence=1)


def assert_same_float(actual: float, expected: float, what: str, tolerance=TOLERANCE):
    if math.isnan(expected):
        assert math.isnan(actual), what
    else:
        assert actual == pytest.approx(expected, rel=0, abs=tolerance), what


def assert_same_diagnosis(actual: Diagnosis, expected: Diagnosis, tolerance=TOLERANCE, what=""):
    assert_same_float(actual.loss, expected.loss, f"{what}loss", tolerance)
    for part in ("gradient_norms", "state_norms", "heat"):
        got, want = getattr(actual, part), getattr(expected, part)
        assert got.keys() == want.keys(), part
        for key in want:
            assert_close(got[key], want[key], f"{what}{part}[{key}]", tolerance)
    assert actual.gates.keys() == expected.gates.keys()
    for layer, gates in expected.gates.items():
        assert actual.gates[layer].keys() == gates.keys(), layer
        for gate, want in gates.items():
            got = actual.gates[layer][gate]
            where = f"{what}{layer} {gate}"
            assert got.kind == want.kind, where
            assert_same_float(got.saturated, want.saturated, f"{where} saturated", tolerance)
            assert_same_float(got.mean, want.mean, f"{where} mean", tolerance)
            assert_close(got.mean_by_step, want.mean_by_step, f"{where} by step", tolerance)


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("case", list(PARITY))
def test_fused_records_what_the_reference_records(case, lengths):
    family, options = PARITY[case]
    model = make_model(family, **options)
    batch = inputs(lengths)
    runs = {}
    for backend in ("reference", "fused"):
        use_backend(model, backend)
        runs[backend] = everything(model, batch)
    (ref_traces, ref_grads, ref_diag), (traces, grads, diag) = runs["reference"], runs["fused"]

    assert [t.name for t in traces] == [t.name for t in ref_traces]
    for trace, want in zip(traces, ref_traces, strict=True):
        assert torch.equal(trace.valid, want.valid), trace.name
        assert len(trace.states) == len(want.states) == len(trace.gradients)
        for k, (s, w) in enumerate(zip(trace.states, want.states, strict=True)):
            assert_close(s, w, f"{trace.name} states[{k}]")
        for k, (g, w) in enumerate(zip(trace.gradients, want.gradients, strict=True)):
            assert_close(g, w, f"{trace.name} gradients[{k}]")
        assert trace.gates.keys() == want.gates.keys()
        for gate, (kind, values) in want.gates.items():
            assert trace.gates[gate][0] == kind
            assert_close(trace.gates[gate][1], values, f"{trace.name} gate {gate}")
    assert grads.keys() == ref_grads.keys()
    for key, want in ref_grads.items():
        assert_close(grads[key], want, f"gradients[{key}]")
        assert want.abs().max() > 1e-3, f"{key}: a vacuous comparison"
    assert_same_diagnosis(diag, ref_diag)


@pytest.mark.parametrize("dtype", [D64, torch.float32])
def test_an_lstm_on_the_vendor_kernel_records_as_the_reference(dtype):
    """torch's LSTM kernel keeps no per-step gradients: while recording, a layer on it runs
    fused (the same values), and the layer's choice is unchanged after."""
    layer = rk.LSTM(INPUT, HIDDEN, 2, bidirectional=True, proj_size=2, backend="vendor")
    model = perturb(Model(layer)).to(dtype)
    assert layer.backend_in_use == "vendor", layer.backend_reason
    x, lengths = inputs([5, 2, 4])
    batch = (x.to(dtype), lengths)
    auto = gradient_flow(model, batch, compute_loss=compute_loss)
    auto_diagnosis = diagnose(model, batch, compute_loss=compute_loss)
    assert layer.backend == "vendor"
    assert layer.backend_in_use == "vendor"
    layer.train()

    layer.backend = "reference"
    reference = gradient_flow(model, batch, compute_loss=compute_loss)
    tolerance = TOLERANCE if dtype == D64 else 1e-5
    assert auto.gradients.keys() == reference.gradients.keys()
    assert len(auto.gradients) == 8  # 2 layers x 2 directions x (h, c)
    for key, want in reference.gradients.items():
        assert_close(auto.gradients[key], want, key, tolerance * max(1.0, want.abs().max()))
    reference_diagnosis = diagnose(model, batch, compute_loss=compute_loss)
    assert_same_diagnosis(auto_diagnosis, reference_diagnosis, tolerance * 10)


def test_a_vendor_configuration_that_fused_cannot_run_records_on_the_reference():
    """bfloat16: vendor serves it, fused refuses it; the recording falls back to the reference."""
    model = Model(rk.GRU(INPUT, HIDDEN)).to(torch.bfloat16)
    assert model.rnn.backend_in_use == "vendor", model.rnn.backend_reason
    x = torch.randn(BATCH, STEPS, INPUT, dtype=torch.bfloat16)
    auto = gradient_flow(model, (x, None), compute_loss=compute_loss)
    model.rnn.backend = "reference"
    reference = gradient_flow(model, (x, None), compute_loss=compute_loss)
    assert torch.equal(auto.gradients["rnn.0.forward/h"], reference.gradients["rnn.0.forward/h"])


# ---------------------------------------------------------------- 3. vanishing / exploding


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_vanishing_and_exploding_gradients_of_a_linear_tanh_rnn(scale, backend):
    """h_t = tanh(s Q h_{t-1} + W x_t) with Q orthogonal and tanh linear (tiny inputs): going
    back one step multiplies the gradient by s Q^T, which scales its norm by exactly s."""
    steps, hidden = 30, 16
    layer = rk.RNN(1, hidden, backend=backend).double()
    with torch.no_grad():
        orthogonal = nn.init.orthogonal_(torch.empty(hidden, hidden, dtype=D64))
        layer.cells[0].weight_hh.copy_(scale * orthogonal)
        layer.cells[0].bias_ih.zero_()
        layer.cells[0].bias_hh.zero_()
    # 1e-9, not 1e-6: at s = 1.5 the state grows by 1.5^30 ≈ 2e5 over the sequence, and inputs
    # of 1e-6 reach |h| ≈ 0.3 at the end, where tanh' = 1 - h² is 0.9, not 1 to 1e-3.
    x = 1e-9 * torch.randn(4, steps, 1, dtype=D64)
    weight = fixed((4, hidden), 0)

    def last_output_loss(model, batch):
        return (model(batch[0])[0][:, -1] * weight).sum()

    flow = gradient_flow(layer, (x, None), compute_loss=last_output_loss)
    (norms,) = flow.norms.values()
    assert list(flow.norms) == ["rnn.0.forward/h"]  # the model is the layer itself: its class
    assert norms.shape == (steps,)
    _, (trace,) = record(layer, (x, None), compute_loss=last_output_loss)
    assert trace.states[0].abs().max() < 1e-2, "the premise: tanh is linear here"

    t = torch.arange(steps, dtype=D64)
    logs = norms.log()
    slope = float(((t - t.mean()) * (logs - logs.mean())).sum() / ((t - t.mean()) ** 2).sum())
    if scale < 1:
        assert slope > 0, f"vanishing: norms must decay going back in time, slope {slope}"
    else:
        assert slope < 0, f"exploding: norms must grow going back in time, slope {slope}"
    assert slope == pytest.approx(-math.log(scale), rel=1e-3)
    ratios = norms[:-1] / norms[1:]  # norm[t - 1] / norm[t]
    torch.testing.assert_close(ratios, torch.full_like(ratios, scale), rtol=1e-3, atol=0)
    assert_close(norms[-1], weight.norm(), "the last step's gradient is the loss's weight")


# ---------------------------------------------------------------- 4. statistics


def forget_and_input_biased(gate: str, bias: float) -> Model:
    model = make_model("lstm", scale=0.1)
    gate_index = {"input": 0, "forget": 1}[gate]
    with torch.no_grad():
        cell = model.rnn.cells[0]
        cell.bias_ih[gate_index * HIDDEN : (gate_index + 1) * HIDDEN] = bias
        cell.bias_hh[gate_index * HIDDEN : (gate_index + 1) * HIDDEN] = 0
    return model


def test_a_forget_gate_biased_to_20_is_saturated_open():
    model = forget_and_input_biased("forget", 20.0)
    x, _ = inputs()
    gates = statistics_of(model, (x, TARGET)).gates["rnn.0.forward"]
    assert gates["forget"].kind == "sigmoid"
    assert gates["forget"].saturated == 1.0
    assert gates["forget"].mean == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(
        gates["forget"].mean_by_step, torch.ones(STEPS, dtype=D64), rtol=0, atol=1e-6
    )
    assert gates["input"].saturated < 1.0  # not every gate


def test_an_input_gate_biased_to_minus_20_is_saturated_shut():
    model = forget_and_input_biased("input", -20.0)
    x, _ = inputs()
    gates = statistics_of(model, (x, TARGET)).gates["rnn.0.forward"]
    assert gates["input"].saturated == 1.0
    assert gates["input"].mean == pytest.approx(0.0, abs=1e-6)
    assert set(gates) == {"input", "forget", "candidate", "output", "tanh(c)"}


@pytest.mark.parametrize("family", ["gru", "elman"])
def test_tiny_weights_saturate_nothing(family):
    model = make_model(family, scale=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e-3)
    x, _ = inputs()
    gates = statistics_of(model, (x, TARGET)).gates["rnn.0.forward"]
    expected = {"gru": {"reset", "update", "candidate"}, "elman": {"activation"}}[family]
    assert set(gates) == expected
    for name, stats in gates.items():
        assert stats.saturated == 0.0, name
    if family == "elman":
        assert gates["activation"].kind == "tanh"
    else:
        assert gates["update"].mean == pytest.approx(0.5, abs=1e-3)


def manual_gate(manual, cell, name, gate, valid):
    """(T, B, size) activations of ``gate`` from ``cell.gates`` over the manual loop's
    previous states, and its mean, per-step mean and saturated fraction over valid steps."""
    with torch.no_grad():
        values = torch.stack(
            [
                cell.gates(manual.inputs[0][t], p if len(p) > 1 else p[0])[gate].values
                for t, p in enumerate(manual.previous[name])
            ]
        )
    by_step = torch.stack([values[t][valid[t]].mean() for t in range(values.shape[0])])
    saturated = ((values < 0.05) | (values > 0.95))[valid].to(D64).mean()
    return values[valid].mean().item(), by_step, saturated.item()


@pytest.mark.parametrize(
    ("family", "gate", "options"),
    [
        ("lstm", "forget", {"bidirectional": True}),
        ("lstm", "input", {"peephole": True, "bidirectional": True}),
        ("gru", "update", {"bidirectional": True}),
        ("gru", "reset", {"reset_after": False}),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gate_means_and_states_equal_a_manual_computation(family, gate, options, backend):
    model = make_model(family, backend, scale=1.5, **options)
    x, lengths = inputs([5, 2, 4])
    valid = valid_steps(lengths)
    diagnosis = statistics_of(model, (x, TARGET, lengths), sequence=1)
    manual = Manual(model.rnn, x, lengths)
    for d in range(model.rnn.num_directions):
        name = layer_name(0, d == 1)
        cell = model.rnn.cells[d]
        mean, by_step, saturated = manual_gate(manual, cell, name, gate, valid)
        stats = diagnosis.gates[name][gate]
        assert stats.mean == pytest.approx(mean, rel=0, abs=1e-12), name
        assert_close(stats.mean_by_step, by_step, f"{name} {gate} by step")
        assert stats.saturated == pytest.approx(saturated, rel=0, abs=1e-12), name
        assert 0 < saturated < 1, "the premise: a fraction between the extremes"

        h = manual.states[name][0]
        norms = torch.stack([h[t][valid[t]].norm(dim=1).mean() for t in range(STEPS)])
        assert_close(diagnosis.state_norms[name], norms, f"{name} state norms")
        heat = diagnosis.heat[name]
        assert heat.shape == (2, HIDDEN)  # sequence 1 has 2 steps
        assert_close(heat, h[:2, 1], f"{name} heat")


def test_state_norms_are_nan_nowhere_and_heat_follows_the_sequence():
    model = make_model("gru", "reference")
    x, lengths = inputs([5, 2, 4])
    for sequence, length in enumerate([5, 2, 4]):
        diagnosis = statistics_of(model, (x, TARGET, lengths), sequence=sequence)
        assert diagnosis.heat["rnn.0.forward"].shape == (length, HIDDEN)
        assert torch.isfinite(diagnosis.state_norms["rnn.0.forward"]).all()


@pytest.mark.parametrize("sequence", [3, -1, 10])
def test_a_sequence_outside_the_batch_is_refused(sequence):
    model = make_model("lstm")
    x, lengths = inputs([5, 2, 4])
    with pytest.raises(ValueError, match=rf"sequence={sequence}\b.*0\.\.2"):
        statistics_of(model, (x, TARGET, lengths), sequence=sequence)
    with pytest.raises(ValueError, match=rf"sequence={sequence}\b"):
        diagnose(model, (x, lengths), compute_loss=compute_loss, sequence=sequence)


@pytest.mark.parametrize("backend", BACKENDS)
def test_diagnose_is_gradient_flow_and_state_statistics_in_one_pass(backend):
    """Through the default call convention: (x, target, lengths), the mse over valid steps."""
    layer = rk.LSTM(INPUT, HIDDEN, 2, bidirectional=True, backend=backend, zoneout=(0.1, 0.2))
    model = perturb(Model(layer).double())
    x, lengths = inputs([5, 2, 4])
    target = torch.randn(BATCH, STEPS, 2, dtype=D64)
    batch = (x, target, lengths)
    both = diagnose(model, batch, sequence=2)
    flow = gradient_flow(model, batch)
    alone = statistics_of(model, batch, sequence=2)
    assert both.loss == flow.loss
    with torch.no_grad():
        assert both.loss == pytest.approx(batch_loss(model.eval(), batch).item(), rel=1e-12)
    assert both.gradient_norms.keys() == flow.norms.keys()
    assert len(both.gradient_norms) == 8
    assert alone.loss is None and alone.gradient_norms == {}
    alone.loss, alone.gradient_norms = flow.loss, flow.norms
    assert_same_diagnosis(both, alone, tolerance=1e-12)


def test_the_mode_is_restored_and_no_grad_is_touched():
    layer = rk.GRU(INPUT, HIDDEN, 2, dropout=0.5, recurrent_dropout=0.5, zoneout=0.3)
    model = perturb(Model(layer).double())
    x, lengths = inputs([5, 2, 4])
    batch = (x, lengths)
    for mode in (True, False):
        model.train(mode)
        results = [
            gradient_flow(model, batch, compute_loss=compute_loss).gradients,
            diagnose(model, batch, compute_loss=compute_loss).gradient_norms,
            statistics_of(model, batch, compute_loss=compute_loss).state_norms,
        ]
        with pytest.raises(ValueError, match="scalar"):
            gradient_flow(model, batch, compute_loss=lambda m, b: m(b[0])[0])
        assert all(m.training == mode for m in model.modules()), f"train={mode} not restored"
        assert all(p.grad is None for p in model.parameters())
        if mode:  # in eval, with no dropout: two diagnoses agree, whatever the model's mode
            first = results
        else:
            for a, b in zip(first, results, strict=True):
                for key in b:
                    assert torch.equal(a[key], b[key]), key

    grads = [torch.full_like(p, 7.0) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad = g.clone()
    diagnose(model, batch, compute_loss=compute_loss)
    for p, g in zip(model.parameters(), grads, strict=True):
        assert torch.equal(p.grad, g)


# ---------------------------------------------------------------- 5. calls joined


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("family", "options"),
    [("lstm", {"num_layers": 2, "peephole": True}), ("gru", {}), ("elman", {"output_size": 2})],
    ids=["lstm-stack2", "gru", "elman-out2"],
)
def test_a_layer_called_once_per_step_reads_as_one_sequence(family, options, backend):
    whole = make_model(family, backend, **options)
    stepwise = Stepwise(whole.rnn)
    stepwise.head = whole.head
    x, _ = inputs()
    batch = (x, None)
    assert whole.rnn.eval().backend_in_use == backend

    def run(model):
        return record(model, batch, compute_loss=compute_loss), gradient_flow(
            model, batch, compute_loss=compute_loss
        )

    (want_loss, want_traces), want_flow = run(whole)
    (loss, traces), flow = run(stepwise)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert [t.name for t in traces] == [t.name for t in want_traces]
    for trace, want in zip(traces, want_traces, strict=True):
        assert trace.valid.shape == (STEPS, BATCH) and trace.valid.all()
        for k, (s, w) in enumerate(zip(trace.states, want.states, strict=True)):
            assert_close(s, w, f"{trace.name} states[{k}]")
        for k, (g, w) in enumerate(zip(trace.gradients, want.gradients, strict=True)):
            assert_close(g, w, f"{trace.name} gradients[{k}]")
        for gate, (_, values) in want.gates.items():
            assert_close(trace.gates[gate][1], values, f"{trace.name} gate {gate}")
    assert flow.gradients.keys() == want_flow.gradients.keys()
    for key, want in want_flow.gradients.items():
        assert_close(flow.gradients[key], want, key)
    assert_same_diagnosis(
        diagnose(stepwise, batch, compute_loss=compute_loss),
        diagnose(whole, batch, compute_loss=compute_loss),
    )


def test_calls_on_batches_of_different_sizes_are_refused():
    model = make_model("gru")

    def two_batches(model, batch):
        x, _ = batch
        return head_loss(*model(x)) + head_loss(*model(x[:2]))

    with pytest.raises(ValueError, match=r"rnn.0.forward ran 2 times on batches of different"):
        gradient_flow(model, inputs(), compute_loss=two_batches)


# ---------------------------------------------------------------- 6. save and load


class TwoLayers(nn.Module):
    """An LSTM encoder and a relu RNN on top: two layers, and a gate that cannot saturate."""

    def __init__(self):
        super().__init__()
        self.encoder = rk.LSTM(INPUT, HIDDEN, bidirectional=True)
        self.top = rk.RNN(2 * HIDDEN, HIDDEN, activation="relu")
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, x, lengths=None):
        out, _ = self.encoder(x, lengths=lengths)
        out, h = self.top(out, lengths=lengths)
        return self.head(out), h


def as_float32(value: float) -> float:
    return torch.tensor(value, dtype=torch.float32).item()


def assert_loaded(loaded: Diagnosis, saved: Diagnosis):
    assert loaded.loss == saved.loss  # JSON: exact
    for part in ("gradient_norms", "state_norms", "heat"):
        got, want = getattr(loaded, part), getattr(saved, part)
        assert got.keys() == want.keys(), part
        for key in want:
            assert got[key].dtype == torch.float32
            assert torch.equal(got[key], want[key].float()), f"{part}[{key}]"
    assert loaded.gates.keys() == saved.gates.keys()
    for layer, gates in saved.gates.items():
        assert loaded.gates[layer].keys() == gates.keys()
        for gate, want in gates.items():
            got = loaded.gates[layer][gate]
            assert got.kind == want.kind
            for field in ("saturated", "mean"):
                expected = as_float32(getattr(want, field))
                if math.isnan(expected):
                    assert math.isnan(getattr(got, field)), (layer, gate, field)
                else:
                    assert getattr(got, field) == expected, (layer, gate, field)
            assert torch.equal(got.mean_by_step, want.mean_by_step.float())


def test_a_diagnosis_survives_save_and_load(tmp_path):
    model = perturb(TwoLayers().double())
    x, lengths = inputs([5, 2, 4])
    saved = diagnose(model, (x, lengths), compute_loss=compute_loss, sequence=2)
    assert set(saved.gates) == {"encoder.0.forward", "encoder.0.backward", "top.0.forward"}
    assert math.isnan(saved.gates["top.0.forward"]["activation"].saturated)  # relu
    assert saved.gates["top.0.forward"]["activation"].kind == "relu"
    assert set(saved.gradient_norms) == {
        "encoder.0.forward/h",
        "encoder.0.forward/c",
        "encoder.0.backward/h",
        "encoder.0.backward/c",
        "top.0.forward/h",
    }
    metadata = {"step": 7, "note": "after warm-up", "nested": {"rates": [0.1, 0.2]}}
    path = tmp_path / "d.safetensors"
    saved.save(path, metadata=metadata)
    loaded, got_metadata = Diagnosis.load(path)
    assert got_metadata == metadata
    assert_loaded(loaded, saved)

    alone = statistics_of(model, (x, TARGET, lengths))
    alone.save(tmp_path / "alone.safetensors")
    loaded, got_metadata = Diagnosis.load(tmp_path / "alone.safetensors")
    assert got_metadata == {}
    assert loaded.loss is None and loaded.gradient_norms == {}
    assert_loaded(loaded, alone)


def test_read_run_reads_the_steps_in_order(tmp_path):
    model = make_model("gru")
    batch = inputs()
    folder = tmp_path / "diagnostics"
    folder.mkdir()
    for step in (20, 3, 100):
        diagnosis = diagnose(model, batch, compute_loss=compute_loss)
        diagnosis.save(folder / f"step_{step:07d}.safetensors", metadata={"step": step})
    runs = read_run(tmp_path)
    assert [metadata["step"] for _, metadata in runs] == [3, 20, 100]
    assert all(isinstance(d, Diagnosis) for d, _ in runs)


def test_a_recorder_record_is_a_saved_diagnosis_with_its_step_and_epoch(tmp_path):
    """The layout read_run and ``rnnkit diagnose`` read: the bytes of ``Diagnosis.save``."""
    model = make_model("gru")
    x, _ = inputs()
    val = torch.utils.data.TensorDataset(x, torch.full((BATCH,), STEPS))
    trainer = types.SimpleNamespace(loss="mse", compute_loss=compute_loss)  # all a hook reads
    context = FitContext(model=model, train=None, val=val, device=torch.device("cpu"),
                         epoch=2, step=30, resume=False)  # fmt: skip
    recorder = Recorder(every=10, folder=tmp_path / "diagnostics", rows=3)
    assert isinstance(recorder, Hook)
    recorder.on_step(trainer, context)
    recorder.on_best_restored(trainer, context, 1)
    batch = (x[:3], torch.full((3,), STEPS))
    expected = diagnose(model, batch, compute_loss=compute_loss)
    expected.save(tmp_path / "step.safetensors", {"step": 30, "epoch": 2})
    expected.save(tmp_path / "best.safetensors", {"step": 30, "epoch": 2, "restored_best_epoch": 1})
    folder = tmp_path / "diagnostics"
    assert sorted(p.name for p in folder.iterdir()) == [
        "step_0000030.safetensors", "step_0000030_best.safetensors",
    ]  # fmt: skip
    assert (folder / "step_0000030.safetensors").read_bytes() == (
        tmp_path / "step.safetensors"
    ).read_bytes()
    assert (folder / "step_0000030_best.safetensors").read_bytes() == (
        tmp_path / "best.safetensors"
    ).read_bytes()
    recorder.on_step(trainer, dataclasses.replace(context, step=31))  # off the grid
    assert len(list(folder.iterdir())) == 2


# ---------------------------------------------------------------- 7. errors


@pytest.mark.parametrize(
    "model",
    [nn.Linear(INPUT, 2), nn.LSTM(INPUT, HIDDEN, batch_first=True)],
    ids=["linear", "torch-lstm"],
)
def test_a_model_without_an_rnnkit_layer_is_refused(model):
    x = torch.randn(BATCH, STEPS, INPUT)

    def loss(model, batch):
        out = model(batch[0])
        return (out[0] if isinstance(out, tuple) else out).pow(2).mean()

    for call in (gradient_flow, diagnose):
        with pytest.raises(ValueError, match="ran no rnnkit recurrent layer"):
            call(model, (x, None), compute_loss=loss)
    with pytest.raises(ValueError, match="ran no rnnkit recurrent layer"):
        statistics_of(model, (x, None), compute_loss=loss)


def test_a_loss_that_is_not_a_scalar_is_refused():
    model = make_model("gru")
    with pytest.raises(ValueError, match=r"scalar tensor, got shape \(3, 5, 2\)"):
        gradient_flow(model, inputs(), compute_loss=lambda m, b: m(b[0])[0])
    with pytest.raises(ValueError, match=r"scalar tensor, got 1\.5"):
        diagnose(model, inputs(), compute_loss=lambda m, b: 1.5)


def test_a_loss_that_depends_on_no_recorded_layer_is_refused():
    model = make_model("lstm")
    with pytest.raises(ValueError, match="does not depend on any recorded layer"):
        gradient_flow(model, inputs(), compute_loss=lambda m, b: m(b[0])[0].detach().sum())
    with pytest.raises(ValueError, match="ran no rnnkit recurrent layer"):
        diagnose(model, inputs(), compute_loss=lambda m, b: torch.tensor(2.0, dtype=D64))


def test_a_loss_that_does_not_reach_the_layer_is_refused():
    model = make_model("gru")

    def head_bias_only(model, batch):
        model(batch[0])
        return model.head.bias.sum()

    for backend in BACKENDS:
        model.rnn.backend = backend
        with pytest.raises(ValueError, match=r"no gradient reached layer rnn\.0\.forward"):
            gradient_flow(model, inputs(), compute_loss=head_bias_only)


def test_a_model_that_is_not_a_module_is_refused():
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module"):
        gradient_flow(lambda x: x, inputs(), compute_loss=compute_loss)


def test_importing_rnnkit_does_not_import_diagnostics():
    code = (
        "import sys, rnnkit, rnnkit.layers; "
        "assert 'rnnkit.diagnostics' not in sys.modules, 'imported'; "
        "assert 'safetensors' not in sys.modules; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert diagnostics.__name__ == "rnnkit.diagnostics"

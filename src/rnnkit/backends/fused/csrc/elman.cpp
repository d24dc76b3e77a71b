// Elman cell, explicit BPTT:
//   pre_t = gi_t + W_hh (m ⊙ h_{t-1}) + b_hh,   y_t = f(pre_t),
//   h_t   = k_t ⊙ h_{t-1} + (1 - k_t) ⊙ y_t     (zoneout; k = 0 without it).
// gi_t = W_ih x_t + b_ih comes in precomputed for all steps. f' is read from y (tanh: 1 - y²,
// sigmoid: y (1 - y), relu / leaky relu: the sign of y, which is the sign of pre for slopes
// >= 0), so forward saves y only when zoneout makes it differ from h_t.
#include "common.h"

namespace rnnkit {
namespace {

enum Activation : int64_t { kTanh = 0, kRelu = 1, kSigmoid = 2, kLeakyRelu = 3, kIdentity = 4 };

// f over n contiguous pre-activations, in place.
template <typename scalar_t>
inline void activate_(int64_t f, scalar_t* p, int64_t n, scalar_t slope) {
  switch (f) {
    case kTanh:
      for (int64_t j = 0; j < n; ++j) p[j] = vtanh(p[j]);
      break;
    case kSigmoid:
      for (int64_t j = 0; j < n; ++j) p[j] = vsigmoid(p[j]);
      break;
    case kRelu:
      for (int64_t j = 0; j < n; ++j) p[j] = p[j] > 0 ? p[j] : scalar_t(0);
      break;
    case kLeakyRelu:
      for (int64_t j = 0; j < n; ++j) p[j] = p[j] > 0 ? p[j] : p[j] * slope;
      break;
    default: break;
  }
}

template <typename scalar_t>
inline scalar_t derivative_from_output(int64_t f, scalar_t y, scalar_t slope) {
  switch (f) {
    case kTanh: return scalar_t(1) - y * y;
    case kRelu: return y > 0 ? scalar_t(1) : scalar_t(0);
    case kSigmoid: return y * (scalar_t(1) - y);
    case kLeakyRelu: return y > 0 ? scalar_t(1) : slope;
    default: return scalar_t(1);
  }
}

// -> {S (T+1, B, H), y (T, B, H) or undefined}
std::vector<Tensor> elman_forward(const Tensor& gi, const Tensor& h0, const Tensor& w_hh,
                                  const OptTensor& b_hh, const OptTensor& recurrent_mask,
                                  const OptTensor& keep, double keep_rate,
                                  const OptTensor& lengths, bool reverse, int64_t activation,
                                  double negative_slope) {
  check_contiguous({{"gi", gi}, {"h0", h0}, {"recurrent_mask", recurrent_mask}, {"keep", keep}});
  const int64_t T = gi.size(0), B = gi.size(1), H = h0.size(1);
  const Steps steps{T, reverse};
  auto S = at::empty({T + 1, B, H}, gi.options());
  S.select(0, steps.initial()).copy_(h0);
  const bool zoned = keep.has_value() || keep_rate != 0;
  Tensor y = zoned ? at::empty({T, B, H}, gi.options()) : Tensor();
  auto gh = at::empty({B, H}, gi.options());
  const StepWeight w_t(w_hh.t());
  const Lengths valid(lengths, B);
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "elman_forward", [&] {
    const Keep<scalar_t> k(keep, keep_rate, B, H);
    const scalar_t slope = static_cast<scalar_t>(negative_slope);
    for (int64_t n = 0; n < T; ++n) {
      const int64_t t = steps.time(n);
      const Tensor prev = S.select(0, steps.prev(t));
      recurrent_product(gh, masked(prev, recurrent_mask), w_t, b_hh);
      const scalar_t* gi_t = gi.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* gh_t = gh.data_ptr<scalar_t>();
      const scalar_t* h_prev = prev.data_ptr<scalar_t>();
      scalar_t* h_next = S.select(0, steps.next(t)).data_ptr<scalar_t>();
      scalar_t* y_t = zoned ? y.data_ptr<scalar_t>() + t * B * H : nullptr;
      for_rows(B, H, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = b * H;
          if (!valid.valid(b, t)) {
            for (int64_t j = 0; j < H; ++j) h_next[row + j] = h_prev[row + j];
            continue;
          }
          // Without zoneout the activation lands in h_t itself; with it, in y_t first.
          scalar_t* out = zoned ? y_t + row : h_next + row;
          for (int64_t j = 0; j < H; ++j) out[j] = gi_t[row + j] + gh_t[row + j];
          activate_(activation, out, H, slope);
          if (zoned) {
            for (int64_t j = 0; j < H; ++j) {
              const scalar_t kk = k.at(t, b, j);
              h_next[row + j] = kk * h_prev[row + j] + (scalar_t(1) - kk) * out[j];
            }
          }
        }
      });
    }
  });
  return {S, y};
}

// -> {dgi (T, B, H), dh0 (B, H), dw_hh (H, H), db_hh (H) or undefined}; fills state_grads
// (T, B, H), if given, with d loss / d h_t (record_state_grad).
std::vector<Tensor> elman_backward(const Tensor& d_out, const Tensor& d_final, const Tensor& S, const OptTensor& y,
                                   const Tensor& w_hh, bool has_bias,
                                   const OptTensor& recurrent_mask, const OptTensor& keep,
                                   double keep_rate, const OptTensor& lengths, bool reverse,
                                   int64_t activation, double negative_slope,
                                   const OptTensor& state_grads) {
  check_contiguous({{"d_out", d_out}, {"S", S}, {"y", y}, {"state_grads", state_grads}});
  const int64_t T = S.size(0) - 1, B = S.size(1), H = S.size(2);
  const Steps steps{T, reverse};
  auto dgi = at::empty({T, B, H}, S.options());
  // d loss / d h_{t} carried back: the part that skips the recurrent product (zoneout, copies
  // past a sequence's end), and the product's own part, d pre_{t+1} W_hh, still to be masked.
  auto carry_direct = d_final.clone();
  auto carry_product = at::zeros({B, H}, S.options());
  const Lengths valid(lengths, B);
  const StepWeight w_back(w_hh);
  AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "elman_backward", [&] {
    const Keep<scalar_t> k(keep, keep_rate, B, H);
    const RowMask<scalar_t> m(recurrent_mask, H);
    const scalar_t slope = static_cast<scalar_t>(negative_slope);
    scalar_t* direct = carry_direct.data_ptr<scalar_t>();
    const scalar_t* product = carry_product.data_ptr<scalar_t>();
    for (int64_t n = T - 1; n >= 0; --n) {
      const int64_t t = steps.time(n);
      if (state_grads)
        record_state_grad(state_grads, t,
                          carry_direct + masked(carry_product, recurrent_mask) + d_out.select(0, t),
                          lengths);
      const scalar_t* dS_t = d_out.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* out = y ? y->data_ptr<scalar_t>() + t * B * H
                              : S.data_ptr<scalar_t>() + steps.next(t) * B * H;
      scalar_t* dpre = dgi.data_ptr<scalar_t>() + t * B * H;
      for_rows(B, H, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const bool on = valid.valid(b, t);
          for (int64_t j = 0; j < H; ++j) {
            const int64_t i = b * H + j;
            const scalar_t dh = direct[i] + product[i] * m.at(b, j) + dS_t[i];
            if (!on) {
              dpre[i] = 0;
              direct[i] = dh;
              continue;
            }
            const scalar_t kk = k.active() ? k.at(t, b, j) : scalar_t(0);
            dpre[i] = dh * (scalar_t(1) - kk) * derivative_from_output(activation, out[i], slope);
            direct[i] = dh * kk;
          }
        }
      });
      w_back.multiply(carry_product, dgi.select(0, t), std::nullopt);
    }
  });
  auto dh0 = carry_direct + masked(carry_product, recurrent_mask);
  auto dgi_2d = dgi.view({T * B, H});
  auto h_in = masked(steps.previous_states(S), recurrent_mask).reshape({T * B, H});
  auto dw_hh = at::mm(dgi_2d.t(), h_in);
  auto db_hh = has_bias ? dgi_2d.sum(0) : Tensor();
  return {dgi, dh0, dw_hh, db_hh};
}

}  // namespace

void register_elman(pybind11::module_& m) {
  m.def("elman_forward", &elman_forward, "Elman cell over all steps of one direction");
  m.def("elman_backward", &elman_backward, "Backward through time of elman_forward");
}

}  // namespace rnnkit

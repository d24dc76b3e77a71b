// GRU cell, explicit BPTT, in both forms (gates in the order r, z, n; h_in = m ⊙ h_{t-1}):
//
//   reset after (cuDNN, torch.nn.GRU): gh = W_hh h_in + b_hh  (or LN_hh(W_hh h_in), 3H)
//       r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r ⊙ gh_n)
//   reset before (Cho 2014):           gh_rz = W_rz h_in + b_rz  (or LN_hh(W_rz h_in), 2H)
//       r, z as above,  gh_n = W_n (r ⊙ h_in) + b_n  (or LN_hn(W_n (r ⊙ h_in)), H)
//       n = tanh(gi_n + gh_n)
//   h_c = (1 - z) ⊙ n + z ⊙ h_{t-1},  h_t = k ⊙ h_{t-1} + (1 - k) ⊙ h_c  (zoneout; k = 0 without)
//
// gi = W_ih x + b_ih (or LN_ih(W_ih x)) comes in precomputed for all steps. Forward saves the
// activated gates r, z, n and, for the reset-after form, gh_n (what r multiplies); with layer
// norm it saves the normalised pre-activations x̂ and 1/σ of each in-loop norm instead (gh_n
// is then x̂_n w + b). Steps past a sequence's end save zeros, so that the weight gradients
// after the loop never meet uninitialised memory. The reset-before form recomputes r ⊙ h_in
// of all steps after the loop for dW_n. σ and tanh are the vectorisable ones of vmath.h, so
// each step's pointwise pass costs a fraction of its GEMM.
#include "common.h"

namespace rnnkit {
namespace {

// Per-row layer norm: x̂ stored; returns 1/σ.
template <typename scalar_t>
inline scalar_t normalise_row(const scalar_t* x, scalar_t* xhat, int64_t N, double eps) {
  scalar_t mean, rstd;
  row_moments(x, N, eps, mean, rstd);
  for (int64_t j = 0; j < N; ++j) xhat[j] = (x[j] - mean) * rstd;
  return rstd;
}

// out = x̂ ⊙ w + b, either of w, b possibly absent.
template <typename scalar_t>
inline void affine_row(const scalar_t* xhat, const scalar_t* w, const scalar_t* b, scalar_t* out,
                       int64_t N) {
  if (w && b)
    for (int64_t j = 0; j < N; ++j) out[j] = xhat[j] * w[j] + b[j];
  else if (w)
    for (int64_t j = 0; j < N; ++j) out[j] = xhat[j] * w[j];
  else if (b)
    for (int64_t j = 0; j < N; ++j) out[j] = xhat[j] + b[j];
  else
    for (int64_t j = 0; j < N; ++j) out[j] = xhat[j];
}

// Layer norm backward of one row: dx = rstd (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)), dx̂ = dy ⊙ w.
// dx may alias dy.
template <typename scalar_t>
inline void normalise_row_backward(const scalar_t* dy, scalar_t* dx, const scalar_t* xhat,
                                   const scalar_t* w, scalar_t rstd, int64_t N) {
  double a = 0, c = 0;
  for (int64_t j = 0; j < N; ++j) {
    const double d = w ? dy[j] * w[j] : dy[j];
    a += d;
    c += d * xhat[j];
  }
  const scalar_t ma = static_cast<scalar_t>(a / N), mc = static_cast<scalar_t>(c / N);
  for (int64_t j = 0; j < N; ++j) {
    const scalar_t d = w ? dy[j] * w[j] : dy[j];
    dx[j] = rstd * (d - ma - xhat[j] * mc);
  }
}

template <typename scalar_t>
inline const scalar_t* ptr(const OptTensor& t) {
  return t ? t->data_ptr<scalar_t>() : nullptr;
}

// -> {S (T+1, B, H), gates (T, B, 3H) = r, z, n, gh_n (T, B, H) or undefined,
//     x̂ (T, B, 3H) or undefined, 1/σ (T, B, 2) or undefined}
std::vector<Tensor> gru_forward(const Tensor& gi, const Tensor& h0, const Tensor& w_hh,
                                const OptTensor& b_hh, bool layer_norm, const OptTensor& ln_w1,
                                const OptTensor& ln_b1, const OptTensor& ln_w2,
                                const OptTensor& ln_b2, double eps,
                                const OptTensor& recurrent_mask, const OptTensor& keep,
                                double keep_rate, const OptTensor& lengths, bool reverse,
                                bool reset_after) {
  check_contiguous({{"gi", gi},
                    {"h0", h0},
                    {"recurrent_mask", recurrent_mask},
                    {"keep", keep},
                    {"lengths", lengths},
                    {"ln_w1", ln_w1},
                    {"ln_b1", ln_b1},
                    {"ln_w2", ln_w2},
                    {"ln_b2", ln_b2}});
  const int64_t T = gi.size(0), B = gi.size(1), H = h0.size(1), G = 3 * H;
  TORCH_CHECK(gi.size(2) == G && w_hh.size(0) == G && w_hh.size(1) == H,
              "rnnkit fused gru: bad sizes");
  const Steps steps{T, reverse};
  const auto opt = gi.options();
  auto S = at::empty({T + 1, B, H}, opt);
  S.select(0, steps.initial()).copy_(h0);
  auto gates = at::empty({T, B, G}, opt);
  Tensor ghn = (reset_after && !layer_norm) ? at::empty({T, B, H}, opt) : Tensor();
  Tensor xhat = layer_norm ? at::empty({T, B, G}, opt) : Tensor();
  Tensor rstd = layer_norm ? at::empty({T, B, 2}, opt) : Tensor();
  // h_in of the next product: S's own slice without a mask, else a buffer the pointwise pass
  // fills for the next step.
  const bool has_mask = recurrent_mask.has_value();
  Tensor hin = has_mask ? masked(h0, recurrent_mask).contiguous() : Tensor();
  const Lengths valid(lengths, B);

  // Recurrent weights and biases of the one or two products.
  const StepWeight w1_t(reset_after ? w_hh.t() : w_hh.narrow(0, 0, 2 * H).t());
  const std::optional<StepWeight> w2_t =
      reset_after ? std::nullopt : std::optional<StepWeight>(w_hh.narrow(0, 2 * H, H).t());
  OptTensor b1, b2;
  if (b_hh && !layer_norm) {
    b1 = reset_after ? *b_hh : b_hh->narrow(0, 0, 2 * H);
    if (!reset_after) b2 = b_hh->narrow(0, 2 * H, H);
  }
  const int64_t G1 = reset_after ? G : 2 * H;
  auto gh1 = at::empty({B, G1}, opt);
  Tensor gh2 = reset_after ? Tensor() : at::empty({B, H}, opt);
  Tensor rh = reset_after ? Tensor() : at::empty({B, H}, opt);

  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "gru_forward", [&] {
    const scalar_t* kmask = keep ? keep->data_ptr<scalar_t>() : nullptr;
    const scalar_t krate = static_cast<scalar_t>(keep_rate);
    const bool zoned = kmask != nullptr || keep_rate != 0;
    const scalar_t* mask = ptr<scalar_t>(recurrent_mask);
    const scalar_t* lw1 = ptr<scalar_t>(ln_w1);
    const scalar_t* lb1 = ptr<scalar_t>(ln_b1);
    const scalar_t* lw2 = ptr<scalar_t>(ln_w2);
    const scalar_t* lb2 = ptr<scalar_t>(ln_b2);
    const scalar_t one(1);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.time(s);
      const Tensor prev = S.select(0, steps.prev(t));
      recurrent_product(gh1, has_mask ? hin : prev, w1_t, b1);
      const scalar_t* gi_t = gi.data_ptr<scalar_t>() + t * B * G;
      const scalar_t* h_prev = prev.data_ptr<scalar_t>();
      scalar_t* h_next = S.select(0, steps.next(t)).data_ptr<scalar_t>();
      scalar_t* g_t = gates.data_ptr<scalar_t>() + t * B * G;
      scalar_t* ghn_t = ghn.defined() ? ghn.data_ptr<scalar_t>() + t * B * H : nullptr;
      scalar_t* xh_t = layer_norm ? xhat.data_ptr<scalar_t>() + t * B * G : nullptr;
      scalar_t* rs_t = layer_norm ? rstd.data_ptr<scalar_t>() + t * B * 2 : nullptr;
      scalar_t* hin_p = has_mask ? hin.data_ptr<scalar_t>() : nullptr;
      const scalar_t* gh1_p = gh1.data_ptr<scalar_t>();
      const scalar_t* km_t = kmask ? kmask + t * B * H : nullptr;

      // Row b's new state from z and n, zoneout, and the next product's input.
      auto finish = [&](int64_t b, const scalar_t* z, const scalar_t* n) {
        const scalar_t* hp = h_prev + b * H;
        scalar_t* h = h_next + b * H;
        for (int64_t j = 0; j < H; ++j) h[j] = (one - z[j]) * n[j] + z[j] * hp[j];
        if (km_t) {
          const scalar_t* kk = km_t + b * H;
          for (int64_t j = 0; j < H; ++j) h[j] = kk[j] * hp[j] + (one - kk[j]) * h[j];
        } else if (zoned) {
          for (int64_t j = 0; j < H; ++j) h[j] = krate * hp[j] + (one - krate) * h[j];
        }
        if (mask) {
          const scalar_t* mr = mask + b * H;
          scalar_t* hi = hin_p + b * H;
          for (int64_t j = 0; j < H; ++j) hi[j] = h[j] * mr[j];
        }
      };
      // A step past the sequence's end: copy the state, save zeros.
      auto skip = [&](int64_t b) {
        std::copy_n(h_prev + b * H, H, h_next + b * H);
        if (mask)
          for (int64_t j = 0; j < H; ++j) hin_p[b * H + j] = h_prev[b * H + j] * mask[b * H + j];
        std::fill_n(g_t + b * G, G, scalar_t(0));
        if (ghn_t) std::fill_n(ghn_t + b * H, H, scalar_t(0));
        if (xh_t) std::fill_n(xh_t + b * G, G, scalar_t(0));
        if (rs_t) std::fill_n(rs_t + b * 2, 2, scalar_t(0));
      };

      if (reset_after) {
        for_rows(B, G, [&](int64_t b0, int64_t b1_) {
          std::vector<scalar_t> scratch(layer_norm ? G : 0);
          for (int64_t b = b0; b < b1_; ++b) {
            if (!valid.valid(b, t)) {
              skip(b);
              continue;
            }
            const scalar_t* gir = gi_t + b * G;
            const scalar_t* a = gh1_p + b * G;  // the recurrent pre-activations r, z, n
            scalar_t* gr = g_t + b * G;
            if (layer_norm) {
              scalar_t* xr = xh_t + b * G;
              rs_t[b * 2] = normalise_row(a, xr, G, eps);
              rs_t[b * 2 + 1] = 0;
              affine_row(xr, lw1, lb1, scratch.data(), G);
              a = scratch.data();
            } else {
              std::copy_n(a + 2 * H, H, ghn_t + b * H);
            }
            for (int64_t j = 0; j < 2 * H; ++j) gr[j] = vsigmoid(gir[j] + a[j]);
            for (int64_t j = 0; j < H; ++j)
              gr[2 * H + j] = vtanh(gir[2 * H + j] + gr[j] * a[2 * H + j]);
            finish(b, gr + H, gr + 2 * H);
          }
        });
      } else {
        // r and z, then r ⊙ h_in for the second product.
        scalar_t* rh_p = rh.data_ptr<scalar_t>();
        for_rows(B, 2 * H, [&](int64_t b0, int64_t b1_) {
          std::vector<scalar_t> scratch(layer_norm ? 2 * H : 0);
          for (int64_t b = b0; b < b1_; ++b) {
            scalar_t* rhr = rh_p + b * H;
            if (!valid.valid(b, t)) {
              std::fill_n(rhr, H, scalar_t(0));
              continue;
            }
            const scalar_t* gir = gi_t + b * G;
            const scalar_t* a = gh1_p + b * 2 * H;
            scalar_t* gr = g_t + b * G;
            if (layer_norm) {
              scalar_t* xr = xh_t + b * G;
              rs_t[b * 2] = normalise_row(a, xr, 2 * H, eps);
              affine_row(xr, lw1, lb1, scratch.data(), 2 * H);
              a = scratch.data();
            }
            for (int64_t j = 0; j < 2 * H; ++j) gr[j] = vsigmoid(gir[j] + a[j]);
            const scalar_t* hp = h_prev + b * H;
            if (mask) {
              const scalar_t* mr = mask + b * H;
              for (int64_t j = 0; j < H; ++j) rhr[j] = gr[j] * (hp[j] * mr[j]);
            } else {
              for (int64_t j = 0; j < H; ++j) rhr[j] = gr[j] * hp[j];
            }
          }
        });
        recurrent_product(gh2, rh, *w2_t, b2);
        const scalar_t* gh2_p = gh2.data_ptr<scalar_t>();
        for_rows(B, H, [&](int64_t b0, int64_t b1_) {
          std::vector<scalar_t> scratch(layer_norm ? H : 0);
          for (int64_t b = b0; b < b1_; ++b) {
            if (!valid.valid(b, t)) {
              skip(b);
              continue;
            }
            const scalar_t* gir = gi_t + b * G;
            const scalar_t* a = gh2_p + b * H;
            scalar_t* gr = g_t + b * G;
            if (layer_norm) {
              scalar_t* xr = xh_t + b * G + 2 * H;
              rs_t[b * 2 + 1] = normalise_row(a, xr, H, eps);
              affine_row(xr, lw2, lb2, scratch.data(), H);
              a = scratch.data();
            }
            for (int64_t j = 0; j < H; ++j) gr[2 * H + j] = vtanh(gir[2 * H + j] + a[j]);
            finish(b, gr + H, gr + 2 * H);
          }
        });
      }
    }
  });
  return {S, gates, ghn, xhat, rstd};
}

// -> {dgi (T, B, 3H), dh0 (B, H), dw_hh (3H, H), db_hh (3H) or undefined,
//     d ln_w1, d ln_b1, d ln_w2, d ln_b2 (each undefined where the parameter is absent)};
// fills state_grads (T, B, H), if given, with d loss / d h_t (record_state_grad).
std::vector<Tensor> gru_backward(const Tensor& d_out, const Tensor& d_final, const Tensor& S, const Tensor& gates,
                                 const OptTensor& ghn, const OptTensor& xhat,
                                 const OptTensor& rstd, const Tensor& w_hh, bool has_bias,
                                 bool layer_norm, const OptTensor& ln_w1, const OptTensor& ln_b1,
                                 const OptTensor& ln_w2, const OptTensor& ln_b2,
                                 const OptTensor& recurrent_mask, const OptTensor& keep,
                                 double keep_rate, const OptTensor& lengths, bool reverse,
                                 bool reset_after, const OptTensor& state_grads) {
  check_contiguous({{"d_out", d_out}, {"S", S}, {"gates", gates}, {"ghn", ghn}, {"xhat", xhat},
                    {"rstd", rstd}, {"state_grads", state_grads}});
  const int64_t T = S.size(0) - 1, B = S.size(1), H = S.size(2), G = 3 * H;
  const Steps steps{T, reverse};
  const auto opt = S.options();
  auto dgi = at::empty({T, B, G}, opt);
  // Gradients of the products' raw outputs (before any norm): dgi itself where they coincide
  // (reset before without norm), else their own buffer. Reset after without norm differs from
  // dgi in the n block only (r ⊙ dgi_n), so only that block is kept for dW_hh, in dgh_n, and a
  // step's full row passes through a one-step dgh for the carry's GEMM: T·B·2H fewer values
  // held than a second full buffer.
  const bool n_block_only = reset_after && !layer_norm;
  Tensor dgh = (!reset_after && !layer_norm) ? dgi : at::empty({n_block_only ? 1 : T, B, G}, opt);
  Tensor dgh_n = n_block_only ? at::empty({T, B, H}, opt) : Tensor();
  const int64_t dgh_step = n_block_only ? 0 : 1;  // dgh's slice of step t is t * dgh_step
  // d loss / d h_{t} carried back: the part that skips the products (interpolation, zoneout,
  // copies past a sequence's end), and the products' part, still to be multiplied by m.
  auto carry_direct = d_final.clone();
  auto carry_product = at::zeros({B, H}, opt);
  const Lengths valid(lengths, B);
  // Backward's products: by the whole W_hh (reset after), or by its blocks in turn (Cho's).
  const std::optional<StepWeight> w_back =
      reset_after ? std::optional<StepWeight>(w_hh) : std::nullopt;
  const std::optional<StepWeight> w_rz =
      reset_after ? std::nullopt : std::optional<StepWeight>(w_hh.narrow(0, 0, 2 * H));
  const std::optional<StepWeight> w_n =
      reset_after ? std::nullopt : std::optional<StepWeight>(w_hh.narrow(0, 2 * H, H));

  AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "gru_backward", [&] {
    const Keep<scalar_t> k(keep, keep_rate, B, H);
    const RowMask<scalar_t> m(recurrent_mask, H);
    const scalar_t* lw1 = ptr<scalar_t>(ln_w1);
    const scalar_t* lb1 = ptr<scalar_t>(ln_b1);
    const scalar_t* lw2 = ptr<scalar_t>(ln_w2);
    const scalar_t one(1);
    scalar_t* direct = carry_direct.data_ptr<scalar_t>();
    scalar_t* product = carry_product.data_ptr<scalar_t>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.time(s);
      if (state_grads)
        record_state_grad(state_grads, t,
                          carry_direct + masked(carry_product, recurrent_mask) + d_out.select(0, t),
                          lengths);
      const scalar_t* dS_t = d_out.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* h_prev = S.data_ptr<scalar_t>() + steps.prev(t) * B * H;
      const scalar_t* g_t = gates.data_ptr<scalar_t>() + t * B * G;
      const scalar_t* ghn_t = ghn ? ghn->data_ptr<scalar_t>() + t * B * H : nullptr;
      const scalar_t* xh_t = xhat ? xhat->data_ptr<scalar_t>() + t * B * G : nullptr;
      const scalar_t* rs_t = rstd ? rstd->data_ptr<scalar_t>() + t * B * 2 : nullptr;
      scalar_t* dgi_t = dgi.data_ptr<scalar_t>() + t * B * G;
      scalar_t* dgh_t = dgh.data_ptr<scalar_t>() + t * dgh_step * B * G;
      scalar_t* dghn_t = n_block_only ? dgh_n.data_ptr<scalar_t>() + t * B * H : nullptr;

      // dh_t; keeps what reaches h_{t-1} directly and sets d pre-activations of n and z.
      auto carry = [&](int64_t b, int64_t j, scalar_t z, scalar_t n, scalar_t& dpre_n,
                       scalar_t& dpre_z) {
        const int64_t i = b * H + j;
        const scalar_t dh = direct[i] + product[i] * m.at(b, j) + dS_t[i];
        const scalar_t kk = k.active() ? k.at(t, b, j) : scalar_t(0);
        const scalar_t dhc = dh * (one - kk);
        direct[i] = dh * kk + dhc * z;
        dpre_n = dhc * (one - z) * (one - n * n);
        dpre_z = dhc * (h_prev[i] - n) * z * (one - z);
      };
      auto skip = [&](int64_t b) {
        for (int64_t j = 0; j < H; ++j) {
          const int64_t i = b * H + j;
          direct[i] = direct[i] + product[i] * m.at(b, j) + dS_t[i];
        }
        std::fill_n(dgi_t + b * G, G, scalar_t(0));
        if (dgh.data_ptr() != dgi.data_ptr()) std::fill_n(dgh_t + b * G, G, scalar_t(0));
        if (dghn_t) std::fill_n(dghn_t + b * H, H, scalar_t(0));
      };

      if (reset_after) {
        for_rows(B, G, [&](int64_t b0, int64_t b1_) {
          for (int64_t b = b0; b < b1_; ++b) {
            if (!valid.valid(b, t)) {
              skip(b);
              continue;
            }
            const scalar_t* gr = g_t + b * G;
            scalar_t* di = dgi_t + b * G;
            scalar_t* dh = dgh_t + b * G;
            const scalar_t* xr = layer_norm ? xh_t + b * G : nullptr;
            for (int64_t j = 0; j < H; ++j) {
              const scalar_t r = gr[j], z = gr[H + j], n = gr[2 * H + j];
              scalar_t dpn, dpz;
              carry(b, j, z, n, dpn, dpz);
              const scalar_t a_n =
                  layer_norm ? xr[2 * H + j] * (lw1 ? lw1[2 * H + j] : one) +
                                   (lb1 ? lb1[2 * H + j] : scalar_t(0))
                             : ghn_t[b * H + j];
              const scalar_t dpr = dpn * a_n * r * (one - r);
              di[j] = dh[j] = dpr;
              di[H + j] = dh[H + j] = dpz;
              di[2 * H + j] = dpn;
              dh[2 * H + j] = dpn * r;
              if (dghn_t) dghn_t[b * H + j] = dpn * r;
            }
            if (layer_norm) normalise_row_backward(dh, dh, xr, lw1, rs_t[b * 2], G);
          }
        });
        w_back->multiply(carry_product, dgh.select(0, t * dgh_step), std::nullopt);
      } else {
        // z and n, and the raw gradient of the second product.
        for_rows(B, H, [&](int64_t b0, int64_t b1_) {
          for (int64_t b = b0; b < b1_; ++b) {
            if (!valid.valid(b, t)) {
              skip(b);
              continue;
            }
            const scalar_t* gr = g_t + b * G;
            scalar_t* di = dgi_t + b * G;
            for (int64_t j = 0; j < H; ++j) {
              scalar_t dpn, dpz;
              carry(b, j, gr[H + j], gr[2 * H + j], dpn, dpz);
              di[H + j] = dpz;
              di[2 * H + j] = dpn;
            }
            if (layer_norm)
              normalise_row_backward(di + 2 * H, dgh_t + b * G + 2 * H, xh_t + b * G + 2 * H,
                                     lw2, rs_t[b * 2 + 1], H);
          }
        });
        // d(r ⊙ h_in) = dgh_n W_n, into the product carry; then r, and the first product.
        w_n->multiply(carry_product, dgh.select(0, t).narrow(1, 2 * H, H), std::nullopt);
        for_rows(B, 2 * H, [&](int64_t b0, int64_t b1_) {
          for (int64_t b = b0; b < b1_; ++b) {
            if (!valid.valid(b, t)) {
              std::fill_n(product + b * H, H, scalar_t(0));
              continue;
            }
            const scalar_t* gr = g_t + b * G;
            scalar_t* di = dgi_t + b * G;
            for (int64_t j = 0; j < H; ++j) {
              const int64_t i = b * H + j;
              const scalar_t r = gr[j];
              const scalar_t drh = product[i];
              di[j] = drh * h_prev[i] * m.at(b, j) * r * (one - r);
              product[i] = drh * r;
            }
            if (layer_norm)
              normalise_row_backward(di, dgh_t + b * G, xh_t + b * G, lw1, rs_t[b * 2], 2 * H);
          }
        });
        w_rz->multiply(carry_product, dgh.select(0, t).narrow(1, 0, 2 * H), std::nullopt, true);
      }
    }
  });

  auto dh0 = carry_direct + masked(carry_product, recurrent_mask);
  auto h_in = masked(steps.previous_states(S), recurrent_mask).reshape({T * B, H});
  Tensor dw_hh, db_hh;
  if (n_block_only) {
    auto dgi_rz = dgi.view({T * B, G}).narrow(1, 0, 2 * H);
    auto dgh_n_2d = dgh_n.view({T * B, H});
    dw_hh = at::empty({G, H}, opt);
    auto dw_rz = dw_hh.narrow(0, 0, 2 * H), dw_n = dw_hh.narrow(0, 2 * H, H);
    at::mm_out(dw_rz, dgi_rz.t(), h_in);
    at::mm_out(dw_n, dgh_n_2d.t(), h_in);
    if (has_bias) db_hh = at::cat({dgi_rz.sum(0), dgh_n_2d.sum(0)});
    return {dgi, dh0, dw_hh, db_hh, Tensor(), Tensor(), Tensor(), Tensor()};
  }
  auto dgh_2d = dgh.view({T * B, G});
  if (reset_after) {
    dw_hh = at::mm(dgh_2d.t(), h_in);
  } else {
    dw_hh = at::empty({G, H}, opt);
    auto dw_rz = dw_hh.narrow(0, 0, 2 * H), dw_n = dw_hh.narrow(0, 2 * H, H);
    at::mm_out(dw_rz, dgh_2d.narrow(1, 0, 2 * H).t(), h_in);
    auto rh = gates.view({T * B, G}).narrow(1, 0, H) * h_in;
    at::mm_out(dw_n, dgh_2d.narrow(1, 2 * H, H).t(), rh);
  }
  if (has_bias && !layer_norm) db_hh = dgh_2d.sum(0);
  Tensor dlw1, dlb1, dlw2, dlb2;
  if (layer_norm) {
    // Gradients of the norms' outputs: dgi, except r ⊙ dgi_n for the n part of reset after.
    auto post = dgi.view({T * B, G});
    if (reset_after) {
      post = post.clone();
      post.narrow(1, 2 * H, H).mul_(gates.view({T * B, G}).narrow(1, 0, H));
    }
    auto xh = xhat->view({T * B, G});
    if (reset_after) {
      if (ln_w1) dlw1 = (post * xh).sum(0);
      if (ln_b1) dlb1 = post.sum(0);
    } else {
      auto px = (ln_w1 || ln_w2) ? (post * xh).sum(0) : Tensor();
      if (ln_w1) dlw1 = px.narrow(0, 0, 2 * H).contiguous();
      if (ln_w2) dlw2 = px.narrow(0, 2 * H, H).contiguous();
      auto p = (ln_b1 || ln_b2) ? post.sum(0) : Tensor();
      if (ln_b1) dlb1 = p.narrow(0, 0, 2 * H).contiguous();
      if (ln_b2) dlb2 = p.narrow(0, 2 * H, H).contiguous();
    }
  }
  return {dgi, dh0, dw_hh, db_hh, dlw1, dlb1, dlw2, dlb2};
}

}  // namespace

void register_gru(pybind11::module_& m) {
  m.def("gru_forward", &gru_forward, "GRU cell over all steps of one direction");
  m.def("gru_backward", &gru_backward, "Backward through time of gru_forward");
}

}  // namespace rnnkit

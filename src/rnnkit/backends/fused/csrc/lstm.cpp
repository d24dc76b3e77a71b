// LSTM cell, explicit BPTT (gates i, f, g, o; H cells, R = proj_size or H outputs):
//   a_t   = gi_t + W_hh (m ⊙ h_{t-1}) + b_hh          or, with layer norm,
//   a_t   = gi_t + LN_hh(W_hh (m ⊙ h_{t-1}))          (LN_hh has no shift),
//   i, f  = σ(a_i + p_i ⊙ c_{t-1}), σ(a_f + p_f ⊙ c_{t-1}),   g = tanh(a_g),
//   c̃_t   = f ⊙ c_{t-1} + i ⊙ g,   o = σ(a_o + p_o ⊙ c̃_t),
//   h̃_t   = W_hr (o ⊙ tanh(c̃_t))   (LN_c(c̃_t) inside the tanh with layer norm; no W_hr
//           without projection),
//   h_t   = k^h_t ⊙ h_{t-1} + (1 - k^h_t) ⊙ h̃_t,   c_t = k^c_t ⊙ c_{t-1} + (1 - k^c_t) ⊙ c̃_t.
// gi_t = W_ih x_t + b_ih (or LN_ih(W_ih x_t)) is computed here too, a chunk of steps at a time.
//
// Forward saves the activated gates, c̃ (only when zoneout makes it differ from c_t), and with
// layer norm the normalised recurrent product x̂_hh and the row statistics (rstd of LN_hh, mean
// and rstd of LN_c). Backward recomputes tanh(c̃), LN_c(c̃) and o ⊙ tanh(·) from them.
//
// Each step's pointwise work is a few branch-free loops per batch row (below) that GCC
// vectorises, with its own exp: std::exp/std::tanh run one element at a time and cost more
// than the step's GEMM. What a configuration lacks is a constant row (zero peepholes, unit LN
// weight, the zoneout rate), so the loops carry no branches on options.
#include "common.h"

namespace rnnkit {
namespace {

// The per-row loops of the cell, each simple enough to vectorise (restrict: no aliasing).

// out = k ⊙ prev + (1 - k) ⊙ cur (zoneout; out may be cur).
template <typename T>
inline void blend(int64_t n, const T* __restrict k, const T* __restrict prev, const T* cur,
                  T* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = k[j] * prev[j] + (T(1) - k[j]) * cur[j];
}

// The gates from their pre-activations (in place) and c̃; with kOutput also o and o ⊙ tanh(c̃).
template <typename T, bool kOutput>
inline void cell_row(int64_t H, T* __restrict ai, T* __restrict af, T* __restrict ag,
                     T* __restrict ao, const T* __restrict cp, const T* __restrict pi,
                     const T* __restrict pf, const T* __restrict po, T* __restrict cr,
                     T* __restrict hout) {
  for (int64_t j = 0; j < H; ++j) {
    const T c0 = cp[j];
    const T i = vsigmoid(ai[j] + pi[j] * c0), f = vsigmoid(af[j] + pf[j] * c0);
    const T g = vtanh(ag[j]);
    const T c = f * c0 + i * g;
    ai[j] = i;
    af[j] = f;
    ag[j] = g;
    cr[j] = c;
    if constexpr (kOutput) {
      const T o = vsigmoid(ao[j] + po[j] * c);
      ao[j] = o;
      hout[j] = o * vtanh(c);
    }
  }
}

// With layer norm: o and o ⊙ tanh(LN_c(c̃)) once LN_c's statistics are known.
template <typename T>
inline void output_row_ln(int64_t H, T* __restrict ao, const T* __restrict cr,
                          const T* __restrict po, T mu, T rs, const T* __restrict w,
                          const T* __restrict bias, T* __restrict hout) {
  for (int64_t j = 0; j < H; ++j) {
    const T o = vsigmoid(ao[j] + po[j] * cr[j]);
    ao[j] = o;
    hout[j] = o * vtanh((cr[j] - mu) * rs * w[j] + bias[j]);
  }
}

// Backward through h̃ = o ⊙ tanh(y), y = c̃ or LN_c(c̃): d a_o, and d y (LN: d x̂ = d y ⊙ w,
// with the weight and bias gradients accumulated per row); o ⊙ tanh(y) is recomputed into hh.
template <typename T, bool kNorm>
inline void back_output_row(int64_t H, const T* __restrict dh, const T* __restrict o_,
                            const T* __restrict cr, T mu, T rs, const T* __restrict w,
                            const T* __restrict bias, T* __restrict hh, T* __restrict dao,
                            T* __restrict dy_out, T* __restrict aw, T* __restrict ab) {
  for (int64_t j = 0; j < H; ++j) {
    const T o = o_[j];
    T y = cr[j], xc = 0;
    if constexpr (kNorm) {
      xc = (cr[j] - mu) * rs;
      y = xc * w[j] + bias[j];
    }
    const T u = vtanh(y);
    hh[j] = o * u;
    dao[j] = dh[j] * u * o * (T(1) - o);
    const T dy = dh[j] * o * (T(1) - u * u);
    if constexpr (kNorm) {
      aw[j] += dy * xc;
      ab[j] += dy;
      dy_out[j] = dy * w[j];
    } else {
      dy_out[j] = dy;
    }
  }
}

// Backward through c̃ and the gates: d a_i, d a_f, d a_g in place of what they hold (d a_i's
// slot holds d y or d x̂ from back_output_row), and the carried d c_{t-1} in place of d c_t.
// With kRecord, d c̃_t itself goes to `record` too (diagnostics).
template <typename T, bool kNorm, bool kRecord>
inline void back_cell_row(int64_t H, T* __restrict di, T* __restrict df, T* __restrict dg,
                          const T* __restrict dao, const T* __restrict gi_,
                          const T* __restrict gf_, const T* __restrict gg_,
                          const T* __restrict cp, const T* __restrict cr, T* __restrict dcr,
                          const T* __restrict dSc, const T* __restrict kc,
                          const T* __restrict pi, const T* __restrict pf,
                          const T* __restrict po, T mu, T rs, T s1, T s2,
                          T* __restrict record) {
  for (int64_t j = 0; j < H; ++j) {
    T dc_h = di[j];
    if constexpr (kNorm) dc_h = rs * (di[j] - s1 - (cr[j] - mu) * rs * s2);
    const T dct = dcr[j] + dSc[j];
    const T k = kc[j];
    const T dc = dct * (T(1) - k) + dc_h + dao[j] * po[j];
    if constexpr (kRecord) record[j] = dc;
    const T i = gi_[j], f = gf_[j], g = gg_[j];
    const T dai = dc * g * i * (T(1) - i);
    const T daf = dc * cp[j] * f * (T(1) - f);
    di[j] = dai;
    df[j] = daf;
    dg[j] = dc * i * (T(1) - g * g);
    dcr[j] = dc * f + dct * k + dai * pi[j] + daf * pf[j];
  }
}

// back_cell_row, recording d c̃_t where `record` is given: the choice is made once per row, so
// the loop without it stays as lean as it was (a test inside it cost the LSTM 3 %, measured).
template <typename T, bool kNorm>
inline void back_cell_row(int64_t H, T* di, T* df, T* dg, const T* dao, const T* gi_,
                          const T* gf_, const T* gg_, const T* cp, const T* cr, T* dcr,
                          const T* dSc, const T* kc, const T* pi, const T* pf, const T* po, T mu,
                          T rs, T s1, T s2, T* record) {
  if (record)
    back_cell_row<T, kNorm, true>(H, di, df, dg, dao, gi_, gf_, gg_, cp, cr, dcr, dSc, kc, pi,
                                  pf, po, mu, rs, s1, s2, record);
  else
    back_cell_row<T, kNorm, false>(H, di, df, dg, dao, gi_, gf_, gg_, cp, cr, dcr, dSc, kc, pi,
                                   pf, po, mu, rs, s1, s2, nullptr);
}

// d h_t split by zoneout: out = d h̃_t, direct = the part that skips the cell; d h_t is what
// came from above (dS), the carried direct part, and the recurrent product's part times m.
template <typename T>
inline void split_row(int64_t R, T* __restrict direct, const T* __restrict product,
                      const T* __restrict m, const T* __restrict dS, const T* __restrict k,
                      T* __restrict out) {
  for (int64_t j = 0; j < R; ++j) {
    const T dh = direct[j] + product[j] * m[j] + dS[j];
    direct[j] = dh * k[j];
    out[j] = dh * (T(1) - k[j]);
  }
}

// a = gi + gh, or with layer norm x̂ = (gh - mean) rstd (saved) and a = gi + w ⊙ x̂.
template <typename T>
inline void pre_row(int64_t G, const T* __restrict gi, const T* __restrict gh, T* __restrict a) {
  for (int64_t j = 0; j < G; ++j) a[j] = gi[j] + gh[j];
}

template <typename T>
inline void pre_row_ln(int64_t G, const T* __restrict gi, const T* __restrict gh, T mean, T rs,
                       const T* __restrict w, T* __restrict xhat, T* __restrict a) {
  for (int64_t j = 0; j < G; ++j) {
    xhat[j] = (gh[j] - mean) * rs;
    a[j] = gi[j] + w[j] * xhat[j];
  }
}

// LN backward to its input: rstd (d a ⊙ w - s1 - x̂ s2), s1, s2 the means of d a ⊙ w and
// d a ⊙ w ⊙ x̂.
template <typename T>
inline void ln_back_row(int64_t G, const T* __restrict da, const T* __restrict w,
                        const T* __restrict xhat, T r, T s1, T s2, T* __restrict out) {
  for (int64_t j = 0; j < G; ++j) out[j] = r * (da[j] * w[j] - s1 - xhat[j] * s2);
}

template <typename T>
inline void skip_row(int64_t R, T* __restrict direct, const T* __restrict product,
                     const T* __restrict m, const T* __restrict dS) {
  for (int64_t j = 0; j < R; ++j) direct[j] = direct[j] + product[j] * m[j] + dS[j];
}

// Constant rows standing in for what a configuration lacks, so that the row loops carry no
// branches: zeros for missing peepholes, ones for a missing LN weight or recurrent mask, the
// zoneout rate (0 without zoneout) where there is no zoneout mask.
struct Constants {
  Tensor zeros, ones, rate_h, rate_c;
  Constants(const at::TensorOptions& options, int64_t G, int64_t R, int64_t H, double rate_h_,
            double rate_c_)
      : zeros(at::zeros({G}, options)),
        ones(at::ones({G}, options)),
        rate_h(at::full({R}, rate_h_, options)),
        rate_c(at::full({H}, rate_c_, options)) {}
};

// The optional parameters as rows: peepholes p_i, p_f, p_o and the LN weights and shift, each
// the parameter's own row or a constant one that makes it a no-op (and a row of ones).
template <typename T>
struct OptionalRows {
  const T *ones, *pi, *pf, *po, *lnw_hh, *lnw_c, *lnb_c;
  OptionalRows(const Constants& k, const OptTensor& peephole, const OptTensor& ln_hh_w,
               const OptTensor& ln_c_w, const OptTensor& ln_c_b, int64_t H) {
    const T* zeros = k.zeros.data_ptr<T>();
    ones = k.ones.data_ptr<T>();
    const T* peep = peephole ? peephole->data_ptr<T>() : nullptr;
    pi = peep ? peep : zeros;
    pf = peep ? peep + H : zeros;
    po = peep ? peep + 2 * H : zeros;
    lnw_hh = ln_hh_w ? ln_hh_w->data_ptr<T>() : ones;
    lnw_c = ln_c_w ? ln_c_w->data_ptr<T>() : ones;
    lnb_c = ln_c_b ? ln_c_b->data_ptr<T>() : zeros;
  }
};

// A zoneout keep row: the mask's row (t, b) in training, else the rate row.
template <typename T>
inline const T* keep_row(const OptTensor& keep, const Tensor& rate_row, int64_t t, int64_t b,
                         int64_t B, int64_t size) {
  return keep ? keep->data_ptr<T>() + (t * B + b) * size : rate_row.data_ptr<T>();
}

// -> {Sh (T+1, B, R), Sc (T+1, B, H), gates (T, B, 4H), c̃ (T, B, H) or undefined,
//     x̂_hh (T, B, 4H) or undefined, stats (3, T, B): rstd_hh, mean_c, rstd_c, or undefined,
//     stats_ih (2, T, B): mean and rstd of LN_ih, or undefined}
std::vector<Tensor> lstm_forward(const Tensor& x, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_hh, const OptTensor& b_hh,
                                 const OptTensor& peephole, const OptTensor& w_hr,
                                 bool layer_norm, const OptTensor& ln_hh_w,
                                 const OptTensor& ln_c_w, const OptTensor& ln_c_b,
                                 double eps_hh, double eps_c, const OptTensor& recurrent_mask,
                                 const OptTensor& keep_h, double rate_h, const OptTensor& keep_c,
                                 double rate_c, const OptTensor& lengths, bool reverse,
                                 const Tensor& w_ih, const OptTensor& b_ih, int64_t chunk_rows,
                                 const OptTensor& ln_ih_w, const OptTensor& ln_ih_b,
                                 double eps_ih) {
  check_contiguous({{"x", x}, {"h0", h0}, {"ln_ih_w", ln_ih_w}, {"ln_ih_b", ln_ih_b}, {"c0", c0}, {"peephole", peephole},
                    {"ln_hh_w", ln_hh_w}, {"ln_c_w", ln_c_w}, {"ln_c_b", ln_c_b},
                    {"recurrent_mask", recurrent_mask}, {"keep_h", keep_h}, {"keep_c", keep_c}});
  // gi_t, the input projections, for a chunk of steps (about chunk_rows rows) at a time, so
  // that they are never held for all steps; with layer norm, LN_ih's row statistics are kept
  // (backward recomputes the projections: one more GEMM per chunk instead of a gate-sized
  // tensor per step held from forward to backward).
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2);
  const int64_t G = w_ih.size(0), H = G / 4, R = h0.size(1);
  const int64_t chunk = std::min<int64_t>(T, std::max<int64_t>(1, (chunk_rows + B - 1) / B));
  const auto opts = x.options();
  const Tensor gi_steps = at::empty({chunk, B, G}, opts);
  const StepWeight w_ih_t(w_ih.t());
  Tensor stats_ih = layer_norm ? at::empty({2, T, B}, opts) : Tensor();  // mean, rstd
  const bool proj = w_hr.has_value();
  const Steps steps{T, reverse};
  auto Sh = at::empty({T + 1, B, R}, opts);
  auto Sc = at::empty({T + 1, B, H}, opts);
  Sh.select(0, steps.initial()).copy_(h0);
  Sc.select(0, steps.initial()).copy_(c0);
  const bool zoned_h = keep_h.has_value() || rate_h != 0;
  const bool zoned_c = keep_c.has_value() || rate_c != 0;
  auto gates = at::empty({T, B, G}, opts);
  Tensor c_new = zoned_c ? at::empty({T, B, H}, opts) : Tensor();
  Tensor xhat = layer_norm ? at::empty({T, B, G}, opts) : Tensor();
  Tensor stats = layer_norm ? at::empty({3, T, B}, opts) : Tensor();
  auto gh = at::empty({B, G}, opts);
  Tensor h_in = recurrent_mask ? at::empty({B, R}, opts) : Tensor();
  Tensor hh = proj ? at::empty({B, H}, opts) : Tensor();
  const StepWeight w_t(w_hh.t());
  const std::optional<StepWeight> w_hr_t =
      proj ? std::optional<StepWeight>(w_hr->t()) : std::nullopt;
  const Lengths valid(lengths, B);
  const Constants k(opts, G, R, H, rate_h, rate_c);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    using T_ = scalar_t;
    const OptionalRows<T_> rows(k, peephole, ln_hh_w, ln_c_w, ln_c_b, H);
    const T_ *pi = rows.pi, *pf = rows.pf, *po = rows.po;
    const T_ *lnw_hh = rows.lnw_hh, *lnw_c = rows.lnw_c, *lnb_c = rows.lnb_c;
    int64_t t_lo = 0;  // gi_steps[s] holds step t_lo + s
    for (int64_t n = 0; n < T; ++n) {
      const int64_t t = steps.time(n);
      if (n % chunk == 0) {
        const int64_t last = std::min(T - 1, n + chunk - 1), len = last - n + 1;
        t_lo = std::min(t, steps.time(last));
        auto out = gi_steps.narrow(0, 0, len).view({len * B, G});
        w_ih_t.multiply(out, x.narrow(0, t_lo, len).view({len * B, I}), b_ih);
        if (layer_norm) {  // gi = LN_ih(x W_ih^T) = w ⊙ x̂_ih + b
          const T_* w = ln_ih_w ? ln_ih_w->data_ptr<T_>() : k.ones.data_ptr<T_>();
          const T_* bias = ln_ih_b ? ln_ih_b->data_ptr<T_>() : k.zeros.data_ptr<T_>();
          T_* mean_out = stats_ih.data_ptr<T_>() + t_lo * B;
          T_* rstd_out = mean_out + T * B;
          for_rows(len * B, 4 * G, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              T_* row = out.data_ptr<T_>() + r * G;
              T_ mean, rs;
              row_moments(row, G, eps_ih, mean, rs);
              mean_out[r] = mean;
              rstd_out[r] = rs;
              for (int64_t j = 0; j < G; ++j) row[j] = w[j] * ((row[j] - mean) * rs) + bias[j];
            }
          });
        }
      }
      const Tensor h_prev_t = Sh.select(0, steps.prev(t));
      Tensor h_next_t = Sh.select(0, steps.next(t));
      if (recurrent_mask) at::mul_out(h_in, h_prev_t, *recurrent_mask);
      recurrent_product(gh, recurrent_mask ? h_in : h_prev_t, w_t, b_hh);
      const T_* gi_t = gi_steps.data_ptr<T_>() + (t - t_lo) * B * G;
      const T_* gh_t = gh.data_ptr<T_>();
      const T_* h_prev = h_prev_t.data_ptr<T_>();
      T_* h_next = h_next_t.data_ptr<T_>();
      const T_* c_prev = Sc.data_ptr<T_>() + steps.prev(t) * B * H;
      T_* c_next = Sc.data_ptr<T_>() + steps.next(t) * B * H;
      T_* gates_t = gates.data_ptr<T_>() + t * B * G;
      T_* c_new_t = zoned_c ? c_new.data_ptr<T_>() + t * B * H : nullptr;
      T_* xhat_t = layer_norm ? xhat.data_ptr<T_>() + t * B * G : nullptr;
      T_* rstd_hh = layer_norm ? stats.data_ptr<T_>() + t * B : nullptr;
      T_* mean_c = layer_norm ? rstd_hh + T * B : nullptr;
      T_* rstd_c = layer_norm ? mean_c + T * B : nullptr;
      T_* hh_t = proj ? hh.data_ptr<T_>() : nullptr;
      for_rows(B, 8 * G, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const T_* cp = c_prev + b * H;
          const T_* hp = h_prev + b * R;
          T_* cn = c_next + b * H;
          T_* hn = h_next + b * R;
          if (!valid.valid(b, t)) {
            for (int64_t j = 0; j < H; ++j) cn[j] = cp[j];
            if (!proj)
              for (int64_t j = 0; j < R; ++j) hn[j] = hp[j];
            else
              for (int64_t j = 0; j < H; ++j) hh_t[b * H + j] = 0;
            // Rows read by reductions after the backward loop must hold no garbage.
            if (zoned_c)
              for (int64_t j = 0; j < H; ++j) c_new_t[b * H + j] = 0;
            if (layer_norm) {
              for (int64_t j = 0; j < G; ++j) xhat_t[b * G + j] = 0;
              rstd_hh[b] = mean_c[b] = rstd_c[b] = 0;
            }
            continue;
          }
          const T_* gir = gi_t + b * G;
          const T_* ghr = gh_t + b * G;
          T_* gr = gates_t + b * G;  // pre-activations first, then the gates in place
          if (layer_norm) {
            T_ mean, rs;
            row_moments(ghr, G, eps_hh, mean, rs);
            rstd_hh[b] = rs;
            pre_row_ln(G, gir, ghr, mean, rs, lnw_hh, xhat_t + b * G, gr);
          } else {
            pre_row(G, gir, ghr, gr);
          }
          // c̃ goes where backward reads it: S itself when there is no zoneout of c.
          T_* cr = zoned_c ? c_new_t + b * H : cn;
          T_* hout = proj ? hh_t + b * H : hn;
          if (layer_norm) {
            cell_row<T_, false>(H, gr, gr + H, gr + 2 * H, gr + 3 * H, cp, pi, pf, po, cr,
                                nullptr);
            row_moments(cr, H, eps_c, mean_c[b], rstd_c[b]);
            output_row_ln(H, gr + 3 * H, cr, po, mean_c[b], rstd_c[b], lnw_c, lnb_c, hout);
          } else {
            cell_row<T_, true>(H, gr, gr + H, gr + 2 * H, gr + 3 * H, cp, pi, pf, po, cr, hout);
          }
          if (zoned_c) blend(H, keep_row<T_>(keep_c, k.rate_c, t, b, B, H), cp, cr, cn);
          if (!proj && zoned_h) blend(R, keep_row<T_>(keep_h, k.rate_h, t, b, B, R), hp, hn, hn);
        }
      });
      if (proj) {
        w_hr_t->multiply(h_next_t, hh, std::nullopt);
        if (lengths || zoned_h) {
          for_rows(B, R, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
              const T_* hp = h_prev + b * R;
              T_* hn = h_next + b * R;
              if (!valid.valid(b, t)) {
                for (int64_t j = 0; j < R; ++j) hn[j] = hp[j];
              } else if (zoned_h) {
                blend(R, keep_row<T_>(keep_h, k.rate_h, t, b, B, R), hp, hn, hn);
              }
            }
          });
        }
      }
    }
  });
  return {Sh, Sc, gates, c_new, xhat, stats, stats_ih};
}

// -> {dh0 (B, R), dc0 (B, H), dw_hh (4H, R), db_hh (4H), dpeephole (3, H), dw_hr (R, H),
//     dln_hh_w (4H), dln_c_w (H), dln_c_b (H), dx (T, B, I), dw_ih (4H, I), db_ih (4H),
//     dln_ih_w (4H), dln_ih_b (4H)}, undefined where not wanted; fills state_grads_h
// (T, B, R) and state_grads_c (T, B, H), if given, with d loss / d h_t and d loss / d c_t
// (record_state_grad). The gate gradients of a chunk of steps (about chunk_rows rows) go into
// dx and the weights' gradients as soon as the chunk is done: they are never held for all
// steps.
std::vector<Tensor> lstm_backward(
    const Tensor& d_out, const Tensor& d_final_h, const Tensor& d_final_c, const Tensor& Sh,
    const Tensor& Sc,
    const Tensor& gates, const OptTensor& c_new, const OptTensor& xhat, const OptTensor& stats,
    const Tensor& w_hh, bool has_bias, const OptTensor& peephole, const OptTensor& w_hr,
    bool layer_norm, const OptTensor& ln_hh_w, const OptTensor& ln_c_w, const OptTensor& ln_c_b,
    const OptTensor& recurrent_mask, const OptTensor& keep_h, double rate_h,
    const OptTensor& keep_c, double rate_c, const OptTensor& lengths, bool reverse,
    const OptTensor& state_grads_h, const OptTensor& state_grads_c, const Tensor& x,
    const Tensor& w_ih, bool has_bias_ih, int64_t chunk_rows, const OptTensor& ln_ih_w,
    bool has_ln_ih_b, const OptTensor& stats_ih) {
  check_contiguous({{"d_out", d_out}, {"Sh", Sh}, {"Sc", Sc}, {"gates", gates}, {"x", x},
                    {"c_new", c_new}, {"xhat", xhat}, {"stats", stats}, {"peephole", peephole},
                    {"ln_hh_w", ln_hh_w}, {"ln_c_w", ln_c_w}, {"ln_c_b", ln_c_b},
                    {"recurrent_mask", recurrent_mask}, {"keep_h", keep_h}, {"keep_c", keep_c},
                    {"state_grads_h", state_grads_h}, {"state_grads_c", state_grads_c},
                    {"ln_ih_w", ln_ih_w}, {"stats_ih", stats_ih}});
  const int64_t T = Sh.size(0) - 1, B = Sh.size(1), R = Sh.size(2), H = Sc.size(2), G = 4 * H;
  const int64_t I = x.size(2);
  const bool proj = w_hr.has_value();
  const Steps steps{T, reverse};
  const auto opts = Sh.options();
  // The steps whose gate gradients are held at once (about chunk_rows rows), folded into the
  // input's and the weights' gradients when the chunk is done. Slot s holds step t_lo + s.
  const int64_t chunk = std::min<int64_t>(T, std::max<int64_t>(1, (chunk_rows + B - 1) / B));
  auto dgi = at::empty({chunk, B, G}, opts);
  // The gradient of the recurrent product W_hh h_in: dgi itself unless LN_hh stands between;
  // and of the input projection x W_ih^T: dgi itself unless LN_ih does.
  Tensor dgh = layer_norm ? at::empty({chunk, B, G}, opts) : dgi;
  Tensor dproj = layer_norm ? at::empty({chunk, B, G}, opts) : dgi;
  auto dw_hh = at::zeros({G, R}, opts);
  Tensor db = has_bias || has_bias_ih ? at::zeros({G}, opts) : Tensor();
  Tensor dpeep = peephole ? at::zeros({3, H}, opts) : Tensor();
  Tensor dln_hh_w = layer_norm && ln_hh_w ? at::zeros({G}, opts) : Tensor();
  Tensor dln_ih_w = layer_norm && ln_ih_w ? at::zeros({G}, opts) : Tensor();
  Tensor dln_ih_b = layer_norm && has_ln_ih_b ? at::zeros({G}, opts) : Tensor();
  auto dx = at::empty(x.sizes(), opts);
  auto dw_ih = at::zeros_like(w_ih);
  const StepWeight w_ih_b(w_ih);
  // With layer norm, the projections x W_ih^T of a chunk, recomputed and normalised (x̂_ih).
  const std::optional<StepWeight> w_ih_t =
      layer_norm ? std::optional<StepWeight>(w_ih.t()) : std::nullopt;
  Tensor xhat_ih = layer_norm ? at::empty({chunk, B, G}, opts) : Tensor();
  const Constants k(opts, G, R, H, rate_h, rate_c);
  // Folds the gate gradients of steps t_lo .. t_lo + len (slots 0 .. len) into dx and the
  // weights' gradients.
  auto fold = [&](int64_t t_lo, int64_t len) {
    const int64_t rows = len * B;
    const Tensor d = dgi.narrow(0, 0, len), d2 = d.reshape({rows, G});
    const Tensor h_in = masked(steps.previous_states(Sh).narrow(0, t_lo, len), recurrent_mask);
    dw_hh.addmm_(dgh.narrow(0, 0, len).reshape({rows, G}).t(), h_in.reshape({rows, R}));
    if (db.defined()) db.add_(d2.sum(0));
    if (peephole) {
      const Tensor c_prev = steps.previous_states(Sc).narrow(0, t_lo, len);
      const Tensor c_t = (c_new ? *c_new : Sc.narrow(0, reverse ? 0 : 1, T)).narrow(0, t_lo, len);
      dpeep.add_(at::stack({(d.narrow(2, 0, H) * c_prev).sum({0, 1}),
                            (d.narrow(2, H, H) * c_prev).sum({0, 1}),
                            (d.narrow(2, 3 * H, H) * c_t).sum({0, 1})}));
    }
    if (dln_hh_w.defined()) dln_hh_w.add_((d * xhat->narrow(0, t_lo, len)).sum({0, 1}));
    if (layer_norm) {  // through LN_ih, to the projection x W_ih^T
      const Tensor xh = xhat_ih.narrow(0, 0, len);
      auto xh2 = xh.view({rows, G});
      w_ih_t->multiply(xh2, x.narrow(0, t_lo, len).reshape({rows, I}), std::nullopt);
      AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "lstm_ln_ih_backward", [&] {
        const scalar_t* w = (ln_ih_w ? *ln_ih_w : k.ones).data_ptr<scalar_t>();
        const scalar_t* mean = stats_ih->data_ptr<scalar_t>() + t_lo * B;
        const scalar_t* rs = mean + T * B;
        for_rows(rows, 5 * G, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            const scalar_t* da = d2.data_ptr<scalar_t>() + r * G;
            scalar_t* xr = xh2.data_ptr<scalar_t>() + r * G;
            for (int64_t j = 0; j < G; ++j) xr[j] = (xr[j] - mean[r]) * rs[r];
            const scalar_t s1 = lane_sum(G, [&](int64_t j) { return double(da[j]) * w[j]; }) / G;
            const scalar_t s2 =
                lane_sum(G, [&](int64_t j) { return double(da[j]) * w[j] * xr[j]; }) / G;
            ln_back_row(G, da, w, xr, rs[r], s1, s2, dproj.data_ptr<scalar_t>() + r * G);
          }
        });
      });
      if (dln_ih_w.defined()) dln_ih_w.add_((d * xh).sum({0, 1}));
      if (dln_ih_b.defined()) dln_ih_b.add_(d2.sum(0));
    }
    const Tensor dp2 = dproj.narrow(0, 0, len).reshape({rows, G});
    auto dx_chunk = dx.narrow(0, t_lo, len).view({rows, I});
    w_ih_b.multiply(dx_chunk, dp2, std::nullopt);
    dw_ih.addmm_(dp2.t(), x.narrow(0, t_lo, len).reshape({rows, I}));
  };
  // d loss / d h_{t-1} carried back: the part that skips the recurrent product (zoneout,
  // copies past a sequence's end) and the product's part, dgh_t W_hh, still to be masked.
  auto carry_direct = d_final_h.clone();
  auto carry_product = at::zeros({B, R}, opts);
  auto carry_c = d_final_c.clone();
  const auto no_dc = at::zeros({B, H}, opts);  // c is no output: only its final state has a grad
  Tensor dhp = proj ? at::empty({T, B, R}, opts) : Tensor();  // d h̃ (before zoneout)
  // o ⊙ tanh(·) recomputed: all steps with projection (for dW_hr), else a scratch step.
  Tensor hh = at::empty({proj ? T : 1, B, H}, opts);
  auto dhh = at::empty({B, H}, opts);  // d (o ⊙ tanh(·)) of one step
  // LN_c's weight and bias gradients, per batch row (each row has one thread), summed after.
  Tensor acc_w = layer_norm ? at::zeros({B, H}, opts) : Tensor();
  Tensor acc_b = layer_norm ? at::zeros({B, H}, opts) : Tensor();
  const Lengths valid(lengths, B);
  const StepWeight w_b(w_hh);
  const std::optional<StepWeight> w_hr_b =
      proj ? std::optional<StepWeight>(*w_hr) : std::nullopt;
  AT_DISPATCH_FLOATING_TYPES(Sh.scalar_type(), "lstm_backward", [&] {
    using T_ = scalar_t;
    const OptionalRows<T_> rows(k, peephole, ln_hh_w, ln_c_w, ln_c_b, H);
    const T_ *pi = rows.pi, *pf = rows.pf, *po = rows.po;
    const T_ *lnw_hh = rows.lnw_hh, *lnw_c = rows.lnw_c, *lnb_c = rows.lnb_c;
    const T_* mask = recurrent_mask ? recurrent_mask->data_ptr<T_>() : nullptr;
    T_* direct = carry_direct.data_ptr<T_>();
    const T_* product = carry_product.data_ptr<T_>();
    T_* dcc = carry_c.data_ptr<T_>();
    T_* aw = layer_norm ? acc_w.data_ptr<T_>() : nullptr;
    T_* ab = layer_norm ? acc_b.data_ptr<T_>() : nullptr;
    int64_t t_lo = 0, last = 0, len = 0;  // the chunk's first time, the n that ends it, steps
    for (int64_t n = T - 1; n >= 0; --n) {
      if ((T - 1 - n) % chunk == 0) {
        last = std::max<int64_t>(0, n - chunk + 1);
        len = n - last + 1;
        t_lo = std::min(steps.time(n), steps.time(last));
      }
      const int64_t t = steps.time(n), slot = t - t_lo;
      if (state_grads_h) {
        record_state_grad(state_grads_h, t,
                          carry_direct + masked(carry_product, recurrent_mask) + d_out.select(0, t),
                          lengths);
        // With zoneout of c, c_t is read by the next step only, so its gradient is the carry
        // (c is no output: dSc = 0); without, c_t is c̃_t, which h_t reads as well, and
        // back_cell_row records its whole gradient.
        if (c_new) record_state_grad(state_grads_c, t, carry_c, lengths);
      }
      T_* record_c = state_grads_c && !c_new ? state_grads_c->data_ptr<T_>() + t * B * H : nullptr;
      const T_* dSh_t = d_out.data_ptr<T_>() + t * B * R;
      const T_* dSc_t = no_dc.data_ptr<T_>();
      const T_* c_prev = Sc.data_ptr<T_>() + steps.prev(t) * B * H;
      const T_* c_t = c_new ? c_new->data_ptr<T_>() + t * B * H
                            : Sc.data_ptr<T_>() + steps.next(t) * B * H;
      const T_* gates_t = gates.data_ptr<T_>() + t * B * G;
      const T_* xhat_t = layer_norm ? xhat->data_ptr<T_>() + t * B * G : nullptr;
      const T_* rstd_hh = layer_norm ? stats->data_ptr<T_>() + t * B : nullptr;
      const T_* mean_c = layer_norm ? rstd_hh + T * B : nullptr;
      const T_* rstd_c = layer_norm ? mean_c + T * B : nullptr;
      T_* dgi_t = dgi.data_ptr<T_>() + slot * B * G;
      T_* dgh_t = dgh.data_ptr<T_>() + slot * B * G;
      T_* dhp_t = proj ? dhp.data_ptr<T_>() + t * B * R : nullptr;
      T_* hh_t = hh.data_ptr<T_>() + (proj ? t * B * H : 0);
      T_* dhh_t = dhh.data_ptr<T_>();
      auto mask_row = [&](int64_t b) { return mask ? mask + b * R : rows.ones; };
      if (proj) {
        for_rows(B, R, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t row = b * R;
            if (valid.valid(b, t)) {
              split_row(R, direct + row, product + row, mask_row(b), dSh_t + row,
                        keep_row<T_>(keep_h, k.rate_h, t, b, B, R), dhp_t + row);
            } else {
              skip_row(R, direct + row, product + row, mask_row(b), dSh_t + row);
              for (int64_t j = 0; j < R; ++j) dhp_t[row + j] = 0;
            }
          }
        });
        w_hr_b->multiply(dhh, dhp.select(0, t), std::nullopt);
      }
      for_rows(B, 12 * G, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          T_* dgr = dgi_t + b * G;
          T_* dcr = dcc + b * H;
          const T_* dScr = dSc_t + b * H;
          if (!valid.valid(b, t)) {
            for (int64_t j = 0; j < H; ++j) dcr[j] += dScr[j];
            if (!proj) skip_row(R, direct + b * R, product + b * R, mask_row(b), dSh_t + b * R);
            for (int64_t j = 0; j < H; ++j) hh_t[b * H + j] = 0;
            for (int64_t j = 0; j < G; ++j) dgr[j] = 0;
            if (record_c)
              for (int64_t j = 0; j < H; ++j) record_c[b * H + j] = 0;
            if (layer_norm)
              for (int64_t j = 0; j < G; ++j) dgh_t[b * G + j] = 0;
            continue;
          }
          const T_* gr = gates_t + b * G;
          const T_* cr = c_t + b * H;
          T_* dh = dhh_t + b * H;
          if (!proj)
            split_row(R, direct + b * R, product + b * R, mask_row(b), dSh_t + b * R,
                      keep_row<T_>(keep_h, k.rate_h, t, b, B, R), dh);
          const T_* kc = keep_row<T_>(keep_c, k.rate_c, t, b, B, H);
          if (layer_norm) {
            const T_ mu = mean_c[b], rs = rstd_c[b];
            back_output_row<T_, true>(H, dh, gr + 3 * H, cr, mu, rs, lnw_c, lnb_c,
                                      hh_t + b * H, dgr + 3 * H, dgr, aw + b * H, ab + b * H);
            // LN_c backward: d c̃ = rstd (d x̂ - mean(d x̂) - x̂ mean(d x̂ ⊙ x̂)).
            const T_ s1 = lane_sum(H, [&](int64_t j) { return double(dgr[j]); }) / H;
            const T_ s2 =
                lane_sum(H, [&](int64_t j) { return double(dgr[j]) * ((cr[j] - mu) * rs); }) / H;
            back_cell_row<T_, true>(H, dgr, dgr + H, dgr + 2 * H, dgr + 3 * H, gr, gr + H,
                                    gr + 2 * H, c_prev + b * H, cr, dcr, dScr, kc, pi, pf, po,
                                    mu, rs, s1, s2, record_c ? record_c + b * H : nullptr);
            // LN_hh backward, to the recurrent product.
            const T_* xr = xhat_t + b * G;
            const T_ t1 = lane_sum(G, [&](int64_t j) { return double(dgr[j]) * lnw_hh[j]; }) / G;
            const T_ t2 =
                lane_sum(G, [&](int64_t j) { return double(dgr[j]) * lnw_hh[j] * xr[j]; }) / G;
            ln_back_row(G, dgr, lnw_hh, xr, rstd_hh[b], t1, t2, dgh_t + b * G);
          } else {
            back_output_row<T_, false>(H, dh, gr + 3 * H, cr, 0, 0, nullptr, nullptr,
                                       hh_t + b * H, dgr + 3 * H, dgr, nullptr, nullptr);
            back_cell_row<T_, false>(H, dgr, dgr + H, dgr + 2 * H, dgr + 3 * H, gr, gr + H,
                                     gr + 2 * H, c_prev + b * H, cr, dcr, dScr, kc, pi, pf, po,
                                     0, 0, 0, 0, record_c ? record_c + b * H : nullptr);
          }
        }
      });
      w_b.multiply(carry_product, dgh.select(0, slot), std::nullopt);
      if (n == last) fold(t_lo, len);
    }
  });
  auto dh0 = carry_direct + masked(carry_product, recurrent_mask);
  auto dc0 = carry_c;
  auto dw_hr = proj ? at::mm(dhp.view({T * B, R}).t(), hh.view({T * B, H})) : Tensor();
  auto dln_c_w = layer_norm && ln_c_w ? acc_w.sum(0) : Tensor();
  auto dln_c_b = layer_norm && ln_c_b ? acc_b.sum(0) : Tensor();
  // Both biases have the gate gradients' sum for gradient (a copy each: autograd may keep a
  // returned gradient as a parameter's .grad and add to it in place).
  auto db_hh = has_bias ? db : Tensor();
  auto db_ih = has_bias_ih ? (has_bias ? db.clone() : db) : Tensor();
  return {dh0, dc0, dw_hh, db_hh, dpeep, dw_hr, dln_hh_w, dln_c_w, dln_c_b, dx, dw_ih, db_ih,
          dln_ih_w, dln_ih_b};
}

}  // namespace

void register_lstm(pybind11::module_& m) {
  m.def("lstm_forward", &lstm_forward, "LSTM cell over all steps of one direction");
  m.def("lstm_backward", &lstm_backward, "Backward through time of lstm_forward");
}

}  // namespace rnnkit

// What every fused cell shares: the state layout, step order, lengths, zoneout and threading.
//
// States of one direction live in one tensor S of T + 1 slices, indexed by time so that the
// outputs are a view of it: going forward, S[0] is the initial state and S[t + 1] the state
// after step t; going backward in time, S[T] is the initial state and S[t] the state after
// step t. The final state is then S[T] (forward) or S[0] (backward) in every case, because a
// step past a sequence's length copies its state unchanged.
//
// The autograd Function returns the outputs (a view of S) and the final state (a copy); backward
// receives their gradients, d_out (T, B, size) by time and d_final, and walks the steps in
// reverse order with one carried gradient per state tensor, which starts as d_final. (Taking
// the gradient of S itself would have autograd build it from zeros for each slice read.)
#pragma once

#include <ATen/Parallel.h>
#include <torch/extension.h>


#include <cmath>
#include <optional>
#include <vector>

#include "gemm.h"
#include "vmath.h"

namespace rnnkit {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

void register_elman(pybind11::module_& m);
void register_lstm(pybind11::module_& m);
void register_gru(pybind11::module_& m);
void register_random(pybind11::module_& m);

// Where step t reads its previous state and writes its new one in S.
struct Steps {
  int64_t T;
  bool reverse;
  int64_t time(int64_t k) const { return reverse ? T - 1 - k : k; }  // k-th step processed
  int64_t prev(int64_t t) const { return reverse ? t + 1 : t; }
  int64_t next(int64_t t) const { return reverse ? t : t + 1; }
  int64_t initial() const { return reverse ? T : 0; }
  // The previous states of all steps, by time: the right-hand side of dW_hh = Σ dgh^T h_in.
  Tensor previous_states(const Tensor& S) const { return S.narrow(0, reverse ? 1 : 0, T); }
};

// Sequence lengths as a plain pointer: step t of row b is valid when t < lengths[b].
struct Lengths {
  const int64_t* data = nullptr;
  Lengths(const OptTensor& lengths, int64_t B) {
    if (!lengths) return;
    TORCH_CHECK(lengths->scalar_type() == at::kLong && lengths->is_contiguous() &&
                    lengths->numel() == B,
                "rnnkit fused: lengths must be ", B, " contiguous int64 values");
    data = lengths->data_ptr<int64_t>();
  }
  bool valid(int64_t b, int64_t t) const { return data == nullptr || t < data[b]; }
};

// The zoneout keep factor of one state tensor of size `size`: a 0/1 mask (T, B, size) in
// training, or the rate itself (its expectation) at evaluation, or nothing.
template <typename scalar_t>
struct Keep {
  const scalar_t* mask = nullptr;
  scalar_t rate = 0;
  int64_t B = 0, size = 0;
  Keep(const OptTensor& keep, double rate_, int64_t B_, int64_t size_)
      : rate(static_cast<scalar_t>(rate_)), B(B_), size(size_) {
    if (keep) mask = keep->data_ptr<scalar_t>();
  }
  bool active() const { return mask != nullptr || rate != 0; }
  scalar_t at(int64_t t, int64_t b, int64_t j) const {
    return mask ? mask[(t * B + b) * size + j] : rate;
  }
};

// Optional (B, size) multiplier of h_{t-1} where it meets the recurrent weights.
template <typename scalar_t>
struct RowMask {
  const scalar_t* data = nullptr;
  int64_t size = 0;
  RowMask(const OptTensor& mask, int64_t size_) : size(size_) {
    if (mask) data = mask->data_ptr<scalar_t>();
  }
  scalar_t at(int64_t b, int64_t j) const { return data ? data[b * size + j] : scalar_t(1); }
};

// h_in = h * mask, for the recurrent product (a copy only when there is a mask).
inline Tensor masked(const Tensor& h, const OptTensor& mask) {
  return mask ? h * *mask : h;
}

// Runs f(b0, b1) over batch rows in parallel, in chunks big enough to pay for a thread
// (a few microseconds to wake one; measured: 2048 values per chunk split a 32 x 256 step).
template <typename F>
inline void for_rows(int64_t B, int64_t work_per_row, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 2048 / std::max<int64_t>(work_per_row, 1));
  at::parallel_for(0, B, grain, f);
}

// The recurrent product of one step: out = h_in W^T (+ bias), with W^T packed once per call.
inline void recurrent_product(Tensor& out, const Tensor& h_in, const StepWeight& weight_t,
                              const OptTensor& bias) {
  weight_t.multiply(out, h_in, bias);
}

// Diagnostics (backends/recording.py): with `record` (T, B, size) given, record[t] becomes
// d loss / d (state after step t), which is `total`, the gradient backward carries into step t
// (the output's own plus what later steps sent back), on rows where step t is valid, and 0
// past a sequence's end, where the step is not computed.
inline void record_state_grad(const OptTensor& record, int64_t t, const Tensor& total,
                              const OptTensor& lengths) {
  Tensor out = record->select(0, t);
  if (lengths)
    at::mul_out(out, total, lengths->gt(t).unsqueeze(1).to(total.scalar_type()));
  else
    out.copy_(total);
}

inline void check_contiguous(const std::vector<std::pair<const char*, OptTensor>>& tensors) {
  for (const auto& [name, t] : tensors)
    TORCH_CHECK(!t || t->is_contiguous(), "rnnkit fused: ", name, " must be contiguous");
}

}  // namespace rnnkit

// The per-step product of a recurrence, C (M x N) = A (M x K) · W (K x N) (+ bias or + C), and
// the input projections of a chunk of steps.
//
// Every step of a layer multiplies by the same weight, so the weight is packed once per call
// into column panels of kPanel values, each panel K rows of kPanel contiguous values (zeros past
// N): the inner loop then reads it as one stream. A register-blocked kernel keeps an MR x kPanel
// block of C in vector registers across all K and broadcasts A's values into it, written with
// GCC's vector extensions so that -march=native picks the widest units (AVX-512 on this
// project's machine). Measured there against MKL's sgemm behind at::mm, which packs on every
// call and, on this AMD CPU, does not use AVX-512: 1.1-1.6x as fast on one thread and 1.4-3.7x
// on two for the step shapes of a batch of 1-64 and 50-512 units, 1.1-1.2x for a chunk of 512
// rows; slower (0.65-0.76x) with a transposed A over all steps, so the weight gradients stay on
// at::mm.
#pragma once

#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstring>

namespace rnnkit {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

template <typename T>
struct Vector {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  static constexpr int width = kVectorBytes / sizeof(T);
};

// The packed weight and the kernel for one scalar type.
template <typename T>
class Panels {
 public:
  using V = typename Vector<T>::type;
  static constexpr int kWidth = Vector<T>::width;
  static constexpr int kPanel = 2 * kWidth;  // two vectors of columns per panel

  Panels() = default;

  // Packs weight (K x N), any strides.
  explicit Panels(const at::Tensor& weight)
      : K_(weight.size(0)), N_(weight.size(1)), panels_((N_ + kPanel - 1) / kPanel) {
    packed_ = at::empty({panels_ * K_ * kPanel + kWidth}, weight.options());
    // Aligned to a vector: the buffer's start may be anywhere in its first vector.
    T* base = packed_.data_ptr<T>();
    const auto misalign = reinterpret_cast<uintptr_t>(base) % kVectorBytes;
    data_ = misalign ? base + (kVectorBytes - misalign) / sizeof(T) : base;
    const T* w = weight.data_ptr<T>();
    const int64_t s0 = weight.stride(0), s1 = weight.stride(1);
    at::parallel_for(0, panels_, std::max<int64_t>(1, 16384 / std::max<int64_t>(K_ * kPanel, 1)),
                     [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        T* panel = data_ + p * K_ * kPanel;
        const int64_t n0 = p * kPanel, width = std::min<int64_t>(kPanel, N_ - n0);
        // Along the weight's contiguous dimension (W^T of a parameter is contiguous in k).
        if (s0 == 1) {
          for (int64_t c = 0; c < width; ++c)
            for (int64_t k = 0; k < K_; ++k) panel[k * kPanel + c] = w[k + (n0 + c) * s1];
        } else {
          for (int64_t k = 0; k < K_; ++k)
            for (int64_t c = 0; c < width; ++c) panel[k * kPanel + c] = w[k * s0 + (n0 + c) * s1];
        }
        for (int64_t k = 0; k < K_; ++k)  // the last panel's columns past N
          for (int64_t c = width; c < kPanel; ++c) panel[k * kPanel + c] = 0;
      }
    });
  }

  int64_t K() const { return K_; }
  int64_t N() const { return N_; }

  // C = A · W (+ bias (N) if given) (+ C if accumulate). A: M x K with strides (lda, kstride)
  // (kstride 1: rows; lda 1: the transpose of a row-major matrix); C: M rows of N, row stride
  // ldc.
  void multiply(const T* A, int64_t lda, int64_t kstride, T* C, int64_t ldc, int64_t M,
                const T* bias, bool accumulate) const {
    if (M < kManyRows) {
      // Panels spread over threads: each reads only its part of the weight. A panel of a
      // batch of 32 and 64 inputs is about 2 µs of work, what it takes to wake a thread.
      const int64_t work = std::max<int64_t>(M * K_ * kPanel, 1);
      at::parallel_for(0, panels_, std::max<int64_t>(1, 65536 / work), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) rows(A, lda, kstride, C, ldc, 0, M, p, bias, accumulate);
      });
    } else {
      // Many rows (all steps at once): blocks of rows over threads, each block through every
      // panel while its rows of A stay in L1.
      const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
      at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
          for (int64_t p = 0; p < panels_; ++p)
            rows(A, lda, kstride, C, ldc, b * kRowBlock, std::min(M, (b + 1) * kRowBlock), p,
                 bias, accumulate);
      });
    }
  }

 private:
  static constexpr int64_t kManyRows = 256, kRowBlock = 64;

  // Rows m0..m1 of C over panel p.
  void rows(const T* A, int64_t lda, int64_t kstride, T* C, int64_t ldc, int64_t m0, int64_t m1,
            int64_t p, const T* bias, bool accumulate) const {
    int64_t m = m0;
    for (; m + 8 <= m1; m += 8) block<8>(A, lda, kstride, C, ldc, m, p, bias, accumulate);
    for (; m + 4 <= m1; m += 4) block<4>(A, lda, kstride, C, ldc, m, p, bias, accumulate);
    for (; m < m1; ++m) block<1>(A, lda, kstride, C, ldc, m, p, bias, accumulate);
  }

  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }

  // Rows m..m+MR of C over panel p: an MR x kPanel block held in registers across all K.
  template <int MR>
  void block(const T* A, int64_t lda, int64_t kstride, T* C, int64_t ldc, int64_t m, int64_t p,
             const T* bias, bool accumulate) const {
    V acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = V{};
    const T* w = data_ + p * K_ * kPanel;
    const T* a = A + m * lda;
    for (int64_t k = 0; k < K_; ++k) {
      const V w0 = load(w + k * kPanel), w1 = load(w + k * kPanel + kWidth);
      for (int r = 0; r < MR; ++r) {
        const T x = a[r * lda + k * kstride];
        acc[r][0] += x * w0;
        acc[r][1] += x * w1;
      }
    }
    const int64_t n0 = p * kPanel, width = std::min<int64_t>(kPanel, N_ - n0);
    for (int r = 0; r < MR; ++r) {
      T* c = C + (m + r) * ldc + n0;
      alignas(kVectorBytes) T out[kPanel];
      std::memcpy(out, &acc[r][0], sizeof(V));
      std::memcpy(out + kWidth, &acc[r][1], sizeof(V));
      if (bias)
        for (int64_t j = 0; j < width; ++j) out[j] += bias[n0 + j];
      if (accumulate)
        for (int64_t j = 0; j < width; ++j) c[j] += out[j];
      else
        for (int64_t j = 0; j < width; ++j) c[j] = out[j];
    }
  }

  int64_t K_ = 0, N_ = 0, panels_ = 0;
  at::Tensor packed_;
  T* data_ = nullptr;
};

// A weight W (K x N) packed once for the products of every step: out = a · W (+ bias)
// (+ out). Forward multiplies by W^T of an (N, K) parameter (StepWeight(w.t())), backward by
// the parameter itself.
class StepWeight {
 public:
  explicit StepWeight(const at::Tensor& weight) : dtype_(weight.scalar_type()) {
    TORCH_CHECK(weight.dim() == 2, "rnnkit fused: a step weight must be 2-D");
    if (dtype_ == at::kFloat)
      float_ = Panels<float>(weight);
    else if (dtype_ == at::kDouble)
      double_ = Panels<double>(weight);
    else
      TORCH_CHECK(false, "rnnkit fused: float32 or float64 weights only, not ", dtype_);
  }

  // out (M, N) = a (M, K) · W (+ bias (N)) (+ out when accumulate); a with any strides,
  // out's rows contiguous (any row stride).
  void multiply(at::Tensor& out, const at::Tensor& a, const std::optional<at::Tensor>& bias,
                bool accumulate = false) const {
    TORCH_CHECK(a.scalar_type() == dtype_ && out.scalar_type() == dtype_ && out.stride(1) == 1 && a.size(0) == out.size(0),
                "rnnkit fused: a step product's operands must match its weight");
    if (dtype_ == at::kFloat)
      run(float_, out, a, bias, accumulate);
    else
      run(double_, out, a, bias, accumulate);
  }

 private:
  template <typename T>
  static void run(const Panels<T>& w, at::Tensor& out, const at::Tensor& a,
                  const std::optional<at::Tensor>& bias, bool accumulate) {
    TORCH_CHECK(a.size(1) == w.K() && out.size(1) == w.N() && (!bias || bias->numel() == w.N()),
                "rnnkit fused: a step product's sizes must match its weight");
    w.multiply(a.data_ptr<T>(), a.stride(0), a.stride(1), out.data_ptr<T>(), out.stride(0),
               a.size(0),
               bias ? bias->contiguous().data_ptr<T>() : nullptr, accumulate);
  }

  at::ScalarType dtype_;
  Panels<float> float_;
  Panels<double> double_;
};

}  // namespace rnnkit

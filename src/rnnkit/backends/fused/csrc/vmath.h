// Vectorisable math for the cells' row loops: exp, σ, tanh and sums without branches or
// library calls, so that GCC vectorises the loops that use them (std::exp and std::tanh run
// one element at a time and cost more than a step's GEMM).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnkit {

// exp without branches or calls, so that GCC vectorises the loops of the cell (std::exp would
// run one element at a time): x = n ln 2 + r, |r| <= ln 2 / 2 (Cody-Waite), e^r by a
// polynomial (Taylor to r^12 in double, Cephes' expf in float; a few ulp), 2^n built in the
// exponent bits. Arguments are clamped where 2^n would leave the normal range.
inline double vexp(double x) {
  x = x < -708.0 ? -708.0 : x;
  x = x > 708.0 ? 708.0 : x;
  constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const double t = x * 1.4426950408889634 + magic;
  const double n = t - magic;
  const double r = (x - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6;
  double p = 2.08767569878680989792e-9;
  p = p * r + 2.50521083854417187751e-8;
  p = p * r + 2.75573192239858906526e-7;
  p = p * r + 2.75573192239858906526e-6;
  p = p * r + 2.48015873015873015873e-5;
  p = p * r + 1.98412698412698412698e-4;
  p = p * r + 1.38888888888888888889e-3;
  p = p * r + 8.33333333333333333333e-3;
  p = p * r + 4.16666666666666666667e-2;
  p = p * r + 1.66666666666666666667e-1;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);  // the low bits of t hold n
  bits = (bits + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float vexp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  constexpr float magic = 12582912.0f;  // 1.5 * 2^23
  const float t = x * 1.44269504088896341f + magic;
  const float n = t - magic;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  uint32_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

// σ, and tanh through |x| (1 - 2 / (1 + e^{2|x|}) loses nothing to cancellation there) with
// the sign put back; in float, |x| < 0.625 by Cephes' tanhf polynomial, since 1 - 2 / (...)
// is only accurate to a few ulp of 1 in absolute terms (in double that is far below need).
// Both within about 2 ulp of the exact values, as torch's own.
template <typename T>
inline T vsigmoid(T x) {
  return T(1) / (T(1) + vexp(-x));
}

inline double vtanh(double x) {
  return std::copysign(1.0 - 2.0 / (1.0 + vexp(2.0 * std::fabs(x))), x);
}

inline float vtanh(float x) {
  const float ax = std::fabs(x);
  const float large = std::copysign(1.0f - 2.0f / (1.0f + vexp(2.0f * ax)), x);
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * x + x;
  return ax < 0.625f ? small : large;
}

// Σ_j f(j) over n terms in 8 lanes, accumulated in double: vectorised, and accurate in float.
template <typename F>
inline double lane_sum(int64_t n, const F& f) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += f(j + l);
  double s = 0;
  for (; j < n; ++j) s += f(j);
  for (int l = 0; l < 8; ++l) s += acc[l];
  return s;
}

// Row statistics (mean, 1 / sqrt(biased var + eps)) of n values, as torch's layer_norm.
template <typename T>
inline void row_moments(const T* x, int64_t n, double eps, T& mean, T& rstd) {
  const double mu = lane_sum(n, [&](int64_t j) { return double(x[j]); }) / n;
  const double var = lane_sum(n, [&](int64_t j) {
                       const double d = x[j] - mu;
                       return d * d;
                     }) / n;
  mean = static_cast<T>(mu);
  rstd = static_cast<T>(1.0 / std::sqrt(var + eps));
}

}  // namespace rnnkit

// Dropout and zoneout masks from a counter-based generator (Philox4x32-10, Salmon et al. 2011,
// the generator of cuRAND and of torch on CUDA).
//
// torch's CPU generator (a Mersenne twister) draws one number at a time, about 7 ns each on
// this project's machine, on one thread: the three 60 x 32 x 50 masks between the layers of the
// tutorials' model took 10% of its training time. Philox computes element i's number from (seed, i)
// alone, so the loop vectorises, splits over threads and gives the same mask whatever the
// thread count. The seed is one draw from torch's generator (see noise.py), so that
// torch.manual_seed still fixes every mask.
#include "common.h"

namespace rnnkit {
namespace {

struct Philox {
  uint32_t key0, key1;

  // The four 32-bit numbers of counters (c0 + l, c1, c2, c3), l < L, lane by lane: written
  // across lanes so that GCC vectorises the rounds (one counter at a time runs 3x slower).
  template <int L>
  inline void draw(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t x0[L],
                   uint32_t x1[L], uint32_t x2[L], uint32_t x3[L]) const {
    constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
    constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
    for (int l = 0; l < L; ++l) {
      x0[l] = c0 + uint32_t(l);
      x1[l] = c1;
      x2[l] = c2;
      x3[l] = c3;
    }
    uint32_t k0 = key0, k1 = key1;
    for (int round = 0; round < 10; ++round) {
      for (int l = 0; l < L; ++l) {
        const uint64_t p0 = uint64_t(kMul0) * x0[l], p1 = uint64_t(kMul1) * x2[l];
        const uint32_t y0 = uint32_t(p1 >> 32) ^ x1[l] ^ k0;
        const uint32_t y2 = uint32_t(p0 >> 32) ^ x3[l] ^ k1;
        x1[l] = uint32_t(p1);
        x3[l] = uint32_t(p0);
        x0[l] = y0;
        x2[l] = y2;
      }
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
  }
};

// A tensor of `shape` holding scale with probability keep and 0 otherwise, element i decided by
// Philox number i of `seed`: u = (top 24 bits) / 2^24 in [0, 1), kept when u < keep.
Tensor keep_mask(at::IntArrayRef shape, double keep, double scale, int64_t seed,
                 at::ScalarType dtype) {
  TORCH_CHECK(keep >= 0 && keep <= 1, "rnnkit fused: keep must be in [0, 1], got ", keep);
  auto mask = at::empty(shape, at::TensorOptions().dtype(dtype));
  const int64_t n = mask.numel();
  const Philox philox{uint32_t(uint64_t(seed)), uint32_t(uint64_t(seed) >> 32)};
  // keep as a 24-bit threshold: P(u < keep) = threshold / 2^24, exact for keep = k / 2^24.
  const uint32_t threshold = uint32_t(std::llround(keep * 16777216.0));
  AT_DISPATCH_FLOATING_TYPES(dtype, "keep_mask", [&] {
    scalar_t* out = mask.data_ptr<scalar_t>();
    const auto value = static_cast<scalar_t>(scale);
    // A block of kLanes counters from g (a multiple of kLanes, so g's high word is the same
    // for all) gives elements 4g + j kLanes + l from number j of counter g + l.
    constexpr int kLanes = 16;
    const int64_t blocks = (n + 4 * kLanes - 1) / (4 * kLanes);
    at::parallel_for(0, blocks, 64, [&](int64_t b0, int64_t b1) {
      uint32_t x[4][kLanes];
      for (int64_t block = b0; block < b1; ++block) {
        const uint64_t g = uint64_t(block) * kLanes;
        philox.draw<kLanes>(uint32_t(g), uint32_t(g >> 32), 0, 0, x[0], x[1], x[2], x[3]);
        const int64_t first = 4 * int64_t(g), end = std::min<int64_t>(4 * kLanes, n - first);
        if (end == 4 * kLanes) {
          // Branch-free (a branch here mispredicts on every dropped element).
          scalar_t* o = out + first;
          for (int j = 0; j < 4; ++j)
            for (int l = 0; l < kLanes; ++l)
              o[j * kLanes + l] = value * static_cast<scalar_t>((x[j][l] >> 8) < threshold);
        } else {
          for (int64_t e = 0; e < end; ++e)
            out[first + e] = (x[e / kLanes][e % kLanes] >> 8) < threshold ? value : scalar_t(0);
        }
      }
    });
  });
  return mask;
}

// The raw generator, for its published test vectors (Random123's kat_vectors).
std::vector<int64_t> philox4x32(std::vector<int64_t> counter, std::vector<int64_t> key) {
  TORCH_CHECK(counter.size() == 4 && key.size() == 2, "philox4x32: 4 counter and 2 key words");
  const Philox philox{uint32_t(key[0]), uint32_t(key[1])};
  uint32_t x[4][1];
  philox.draw<1>(uint32_t(counter[0]), uint32_t(counter[1]), uint32_t(counter[2]),
                 uint32_t(counter[3]), x[0], x[1], x[2], x[3]);
  return {x[0][0], x[1][0], x[2][0], x[3][0]};
}

}  // namespace

void register_random(pybind11::module_& m) {
  m.def("keep_mask", &keep_mask, "A 0 / scale mask from Philox4x32-10 numbers of a seed");
  m.def("philox4x32", &philox4x32, "Philox4x32-10 of one counter and key");
}

}  // namespace rnnkit

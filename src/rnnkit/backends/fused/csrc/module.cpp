// The Python module of rnnkit's fused kernels: one forward and one backward per cell family, and the
// masks of the regularisers.
#include "common.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rnnkit fused kernels: explicit forward and backward through time";
  rnnkit::register_elman(m);
  rnnkit::register_lstm(m);
  rnnkit::register_gru(m);
  rnnkit::register_random(m);
}

// State shared by the simulator's runtime pieces: the sticky last error.
#pragma once
#include "kernels/cuda_sim/include/cuda_runtime.h"

namespace sllm::cudasim {
void set_error(cudaError_t err);
}

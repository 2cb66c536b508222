// The ops' device rules, checked with the host-backed stand-in device (no GPU needed):
// inputs of one op on different devices, or ids off the host, are clear errors before any
// kernel runs. (Without the CUDA backend a device tensor is refused as unrunnable; with it,
// the stand-in is "CUDA" and the mixed-device rule is what fires: an error either way.)
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "ops/ops.h"
#include "tensor/tensor.h"
#include "tests/tensor/stand_in_device.h"

using namespace sllm;
using sllm::testing::StandInDevice;

namespace {

// Runs `f`, which must throw sllm::Error, and returns its text.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no sllm::Error thrown";
  return "";
}

}  // namespace

TEST(OpsDevice, InputsOnDifferentDevicesAreAClearError) {
  StandInDevice device;
  Tensor a = Tensor::full({2, 3}, 1.0f);
  Tensor b = Tensor::full({3}, 2.0f).to(Device::CUDA);
  const std::string what = error_of([&] { ops::add(a, b); });
  EXPECT_NE(what.find("add b: tensor is on cuda"), std::string::npos) << what;
  EXPECT_NE(what.find("HINT"), std::string::npos) << what;
  const std::string lin = error_of([&] { ops::linear(a, Tensor::full({4, 3}, 1.0f).to(Device::CUDA)); });
  EXPECT_NE(lin.find("linear weight"), std::string::npos) << lin;
}

TEST(OpsDevice, IdsMustStayOnTheHost) {
  StandInDevice device;
  Tensor table = Tensor::full({5, 2}, 1.0f);
  Tensor ids = Tensor::from_ints({0, 1}, {2}).to(Device::CUDA);
  const std::string what = error_of([&] { ops::embedding(ids, table); });
  EXPECT_NE(what.find("ids must be on the CPU"), std::string::npos) << what;
  const std::string ce = error_of([&] { ops::cross_entropy(Tensor::full({2, 5}, 0.0f), ids); });
  EXPECT_NE(ce.find("ids must be on the CPU"), std::string::npos) << ce;
}

#include "tensor/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace sllm {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

namespace {

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    // aligned_alloc needs a size that is a multiple of the alignment.
    const size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    SLLM_CHECK(p != nullptr, str("out of host memory allocating ", nbytes, " bytes"),
               "use a smaller batch, sequence length or model");
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
  void copy_to_host(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void fill_zero(void* ptr, size_t n) override { std::memset(ptr, 0, n); }
};

Allocator*& slot(Device d) {
  static HostAllocator host;
  static Allocator* table[2] = {&host, nullptr};
  return table[static_cast<int>(d)];
}

}  // namespace

Allocator& allocator_for(Device d) {
  Allocator* a = slot(d);
  SLLM_CHECK(a != nullptr, str("device '", device_name(d), "' is not available in this build"),
             "build with CUDA (cmake -DSLLM_CUDA=ON) on a machine with nvcc, and run where a GPU is present");
  return *a;
}

void register_allocator(Device d, Allocator* allocator) { slot(d) = allocator; }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = allocator_for(device).allocate(nbytes);
}

Storage::Storage(void* external, size_t nbytes, Device device, std::function<void()> release)
    : data_(external), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) {
    release_();
  } else if (data_) {
    allocator_for(device_).deallocate(data_, nbytes_);
  }
}

}  // namespace sllm

// DeviceTable: the descriptor table of a multi-tensor launch (multi_tensor.cuh), mirrored in
// device memory and copied again only when its bytes change. An optimizer step passes the
// same parameters, moments and (with the caching allocator's size-bucketed reuse, usually)
// the same gradient buffers every step, so after the first step the upload is skipped; when
// a gradient does move, the new table is copied in order on the one stream (launch.h), after
// every kernel that still reads the old one.
#include <cstring>

#include "kernels/cuda_kernels.h"
#include "tensor/storage.h"

namespace sllm::kernels::cuda {

DeviceTable::~DeviceTable() {
  if (device_) caching_allocator().deallocate(device_, capacity_);
}

const void* DeviceTable::upload(const void* host, size_t nbytes) {
  if (device_ && nbytes == last_.size() && std::memcmp(host, last_.data(), nbytes) == 0) return device_;
  if (nbytes > capacity_) {
    // Freed to the caching allocator, whose next user is ordered after the kernels still
    // reading the old table (scratch.h's argument).
    if (device_) caching_allocator().deallocate(device_, capacity_);
    device_ = nullptr;
    capacity_ = 0;
    device_ = caching_allocator().allocate(nbytes);
    capacity_ = nbytes;
  }
  copy_h2d(device_, host, nbytes);
  const auto* bytes = static_cast<const unsigned char*>(host);
  last_.assign(bytes, bytes + nbytes);
  ++uploads_;
  return device_;
}

}  // namespace sllm::kernels::cuda

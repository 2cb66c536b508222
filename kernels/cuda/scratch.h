// Scratch: a temporary device buffer for one op (reduction partials, D of attention), taken
// from the caching allocator and given back when the op's launcher returns. Safe without a
// synchronize because all work runs on one stream (launch.h): whoever gets the block next
// enqueues its kernels after the ones that still read it.
#pragma once
#include <cstddef>

#include "kernels/cuda_kernels.h"
#include "tensor/storage.h"

namespace sllm::kernels::cuda {

template <class T>
class Scratch {
 public:
  explicit Scratch(size_t count)
      : nbytes_(count * sizeof(T)),
        ptr_(static_cast<T*>(count ? caching_allocator().allocate(nbytes_) : nullptr)) {}
  ~Scratch() {
    if (ptr_) caching_allocator().deallocate(ptr_, nbytes_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return ptr_; }

 private:
  size_t nbytes_;
  T* ptr_;
};

}  // namespace sllm::kernels::cuda

// A host-backed stand-in for a GPU: an sllm::Allocator over malloc'd host memory,
// registered for Device::CUDA while a StandInDevice guard lives. Lets tests exercise
// device bookkeeping (moves, copies, device checks) on machines without a GPU; it counts
// its host transfers so a test can tell which copy path ran.
#pragma once
#include <cstdlib>
#include <cstring>

#include "tensor/storage.h"

namespace sllm::testing {

class StandInAllocator : public Allocator {
 public:
  int to_host = 0, from_host = 0;
  void* allocate(size_t nbytes) override { return std::malloc(nbytes ? nbytes : 1); }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
  void copy_to_host(void* dst, const void* src, size_t n) override { ++to_host, std::memcpy(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n) override { ++from_host, std::memcpy(dst, src, n); }
  void fill_zero(void* ptr, size_t n) override { std::memset(ptr, 0, n); }
};

// Registers a StandInAllocator for Device::CUDA; unregisters it (no backend) at scope exit.
struct StandInDevice {
  StandInAllocator allocator;
  StandInDevice() { register_allocator(Device::CUDA, &allocator); }
  ~StandInDevice() { register_allocator(Device::CUDA, nullptr); }
  StandInDevice(const StandInDevice&) = delete;
  StandInDevice& operator=(const StandInDevice&) = delete;
};

}  // namespace sllm::testing

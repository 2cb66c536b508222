// Storage: a block of bytes on one device, shared by the tensors that view it.
// Allocation goes through a per-device Allocator, so the CUDA backend plugs in its caching
// allocator (register_allocator) without any caller changing. Host blocks are 64-byte
// aligned (one cache line, one AVX-512 vector). Storage can also wrap memory someone else
// owns (a memory-mapped safetensors file) with a release callback.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace sllm {

struct Bf16Shadow;  // tensor/bf16_shadow.h

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  // Copy between this device and the host (for CPU both are memcpy).
  virtual void copy_to_host(void* host_dst, const void* src, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t nbytes) = 0;
  virtual void fill_zero(void* ptr, size_t nbytes) = 0;
  // Copy between two blocks of this device (clone() of a device tensor). The default goes
  // through a host buffer; a device backend overrides it with a device-to-device copy.
  virtual void copy_within(void* dst, const void* src, size_t nbytes);
  // Returns cached free blocks to the system (no-op for an allocator without a cache): after
  // a one-off release of much memory that the steady state will not ask for again, such as
  // QLoRA's dense weights once quantized.
  virtual void release_cache() {}
};

// The allocator for a device; a sllm::Error with a hint when the backend isn't built in.
Allocator& allocator_for(Device d);
void register_allocator(Device d, Allocator* allocator);

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // uninitialized bytes
  Storage(void* external, size_t nbytes, Device device, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  // Bumped by every mutable access; autograd compares it to detect a saved tensor that was
  // modified in place before backward used it.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }
  // The bf16 copy of the f32 weight held here (tensor/bf16_shadow.h), freed with this block.
  std::shared_ptr<Bf16Shadow>& bf16_shadow_slot() { return bf16_shadow_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_ = Device::CPU;
  uint64_t version_ = 0;
  std::function<void()> release_;
  std::shared_ptr<Bf16Shadow> bf16_shadow_;
};

}  // namespace sllm

// Reverse-mode automatic differentiation on a dynamic tape (define-by-run).
//
// Each differentiable op that sees an input with requires_grad records a Node on its output:
// the inputs (graph edges) and a backward closure that maps the output's gradient to the
// inputs' gradients. backward() walks the graph once in reverse topological order,
// accumulating gradients (+=): into intermediate buffers for non-leaf tensors and into
// `.grad()` for leaves. The graph is freed as it is walked (closures and saved tensors
// released), so a second backward through it is an error, not silent garbage.
//
// Saved tensors remember their storage version: if one was modified in place after the
// forward saved it, backward raises an error instead of using the changed values.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sllm::autograd {

// A tensor saved by an op for its backward, with the version it had then.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, std::string op);
  const Tensor& get() const;  // sllm::Error if the tensor was modified in place since saving

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
  std::string op_;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

struct Node {
  std::string op;                // op name, for error messages
  std::vector<Tensor> inputs;    // differentiable inputs, in the order gradients are returned:
                                 // leaves whole, op outputs as storage-less graph links
                                 // (record(), autograd.cpp)
  BackwardFn backward;           // empty once the graph has been freed
  bool freed = false;
  // Tears down the nodes only this one keeps alive with an explicit stack: the implicit
  // destructor chain (node → input tensor → its node → ...) recurses once per node and
  // overflows the stack on graphs a few hundred thousand ops deep.
  ~Node();
};

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();

// Inference mode: ops record no graph while the guard lives (thread-local, nestable).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Whether an op with these inputs must record a node (grad mode on and any input requires grad).
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `op` on `output`: output.requires_grad = true, output.grad_fn = node. The
// closure's result must have one entry per input (undefined Tensor where none flows).
void record(Tensor& output, const std::string& op, std::vector<Tensor> inputs, BackwardFn backward);

// Gradient of `root` (a one-element tensor: implicit gradient 1) w.r.t. every leaf that
// requires grad. With retain_graph=false (the default) the graph is freed.
void backward(const Tensor& root, bool retain_graph = false);
// Same with an explicit gradient for a non-scalar root (same shape as root).
void backward(const Tensor& root, const Tensor& grad, bool retain_graph = false);

// Called by backward() with each leaf (requiring grad) whose gradient is final: every edge of
// the graph into it has been processed, so nothing more will be added to its .grad() in this
// backward() call. Leaves of nodes that no gradient reached are never reported. Nested
// backward() calls (checkpoint below) report their own leaves. Data-parallel training starts
// a leaf's all-reduce here, while backward goes on (train/data_parallel.h). Set only while
// needed: without a hook backward() counts nothing. Returns the previous hook.
using LeafReadyHook = std::function<void(const Tensor& leaf)>;
LeafReadyHook set_leaf_ready_hook(LeafReadyHook hook);

// Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory
// Cost"; PEFT turns it on for QLoRA): y = fn(x) is computed without a graph and only x is
// kept; backward runs fn(x) again with the graph on and backpropagates g through that
// recomputation, so fn's intermediate activations live only while its own segment's
// backward runs. fn must give the same y both times (sllm's kernels are deterministic and
// dropout masks are functions of (seed, step)); the parameters fn reads get their gradients
// from the recomputation. The node is recorded even when x needs no gradient (a frozen
// embedding's output), since fn's own parameters may. Without grad mode it is plain fn(x).
Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x);

// dst += src elementwise (same shape, dtype f32 or bf16, same device). Used to accumulate
// gradients; a bf16 sum is formed in fp32 and rounded once.
void accumulate(Tensor& dst, const Tensor& src);

// dst (n) += src (n) on a device other than the CPU. Autograd sits below the kernels in the
// layering, so the ops layer registers the device's implementation (ops::init_device).
using DeviceAccumulateFn = void (*)(Tensor& dst, const Tensor& src);
void register_device_accumulate(Device device, DeviceAccumulateFn fn);

}  // namespace sllm::autograd

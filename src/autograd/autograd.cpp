#include "autograd/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace sllm::autograd {

SavedTensor::SavedTensor(const Tensor& t, std::string op) : tensor_(t), version_(t.version()), op_(std::move(op)) {}

const Tensor& SavedTensor::get() const {
  SLLM_CHECK(tensor_.defined(), str("backward of '", op_, "': a saved tensor was already freed"),
             "the graph was freed by an earlier backward(); call backward(root, /*retain_graph=*/true) "
             "to run backward more than once");
  SLLM_CHECK(tensor_.version() == version_,
             str("backward of '", op_, "': a tensor saved for backward was modified in place after the forward (version ",
                 version_, " -> ", tensor_.version(), ")"),
             "don't modify inputs/outputs of a differentiable op before backward(); clone() them instead");
  return tensor_;
}

static thread_local bool g_grad_enabled = true;

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// What a node keeps of an input that another op produced: a handle with its shape, dtype
// and producer node, but not its storage. Backward needs no more of it (the gradient goes to
// the producer), so the values are freed as soon as no backward closure saved them: a
// slice's source, the operands of a residual add, a cast's input. Holding the tensor itself
// here kept every op output alive until backward (PyTorch's graph does the same: edges
// point at grad_fn nodes, and only SavedVariables hold data). Leaves stay whole: backward
// adds into their .grad.
static Tensor graph_link(const Tensor& t) {
  if (!t.defined() || !t.impl().grad_fn) return t;
  auto link = std::make_shared<TensorImpl>();
  link->shape = t.impl().shape;
  link->dtype = t.impl().dtype;
  link->requires_grad = true;
  link->grad_fn = t.impl().grad_fn;
  return Tensor(std::move(link));
}

void record(Tensor& output, const std::string& op, std::vector<Tensor> inputs, BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->op = op;
  for (Tensor& in : inputs) in = graph_link(in);
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl().requires_grad = true;
  output.set_grad_fn(std::move(node));
}

static DeviceAccumulateFn g_cuda_accumulate = nullptr;

void register_device_accumulate(Device device, DeviceAccumulateFn fn) {
  SLLM_ASSERT(device == Device::CUDA);
  g_cuda_accumulate = fn;
}

void accumulate(Tensor& dst, const Tensor& src) {
  check_shape(src, dst.shape(), "gradient accumulation");
  check_dtype(src, dst.dtype(), "gradient accumulation");
  SLLM_CHECK(dst.dtype() == DType::F32 || dst.dtype() == DType::BF16,
             str("gradient accumulation of ", dtype_name(dst.dtype()), " tensors"), "gradients are f32 or bf16");
  SLLM_CHECK(dst.device() == src.device(),
             str("gradient accumulation across devices (", device_name(dst.device()), " += ", device_name(src.device()), ")"),
             "all tensors of one graph must be on one device; move the model and its inputs with .to(device)");
  if (dst.device() != Device::CPU) {
    SLLM_CHECK(g_cuda_accumulate != nullptr, "gradient accumulation on a CUDA tensor, but the device is not initialized",
               "call ops::init_device(Device::CUDA) before using CUDA tensors");
    g_cuda_accumulate(dst, src);
    return;
  }
  const int64_t count = dst.numel();
  if (dst.dtype() == DType::BF16) {
    uint16_t* d = dst.mutable_data<uint16_t>();
    const uint16_t* s = src.data<uint16_t>();
    for (int64_t i = 0; i < count; ++i) d[i] = f32_to_bf16(bf16_to_f32(d[i]) + bf16_to_f32(s[i]));
    return;
  }
  float* d = dst.mutable_f32();
  const float* s = src.f32();
  const int64_t n = dst.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}

// Reverse topological order of the nodes reachable from `root` (iterative DFS, so deep
// graphs cannot overflow the stack). The order holds owning pointers: freeing a node's
// inputs during backward would otherwise destroy the nodes still waiting their turn.
static std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    Node* node = stack.back().first.get();
    size_t& next = stack.back().second;
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.impl().grad_fn) {
        const std::shared_ptr<Node>& child = in.impl().grad_fn;
        if (visited.insert(child.get()).second) stack.push_back({child, 0});
      }
    } else {
      order.push_back(stack.back().first);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};
}

// True when nothing but `t` itself can see its values: one handle to the impl, one impl on
// the storage, no autograd history. Such a gradient can be kept or updated in place
// instead of copied. The caller's own handle counts as the one.
static bool sole_owner(const Tensor& t) {
  const TensorImpl& m = t.impl();
  return t.impl_ptr().use_count() == 1 && m.storage.use_count() == 1 && m.offset == 0 && !m.requires_grad &&
         !m.grad_fn && !m.grad;
}

static void accumulate_leaf(const Tensor& leaf, const Tensor& g) {
  TensorImpl& m = leaf.impl();
  if (!m.grad) {
    // The first gradient to arrive becomes .grad(); a fresh buffer from a backward closure
    // is adopted as is (the common case: every weight gradient), anything shared is copied.
    m.grad = sole_owner(g) ? g.impl_ptr() : g.clone().impl_ptr();
  } else {
    Tensor acc(m.grad);
    accumulate(acc, g);
  }
}

static LeafReadyHook g_leaf_ready_hook;

LeafReadyHook set_leaf_ready_hook(LeafReadyHook hook) {
  std::swap(g_leaf_ready_hook, hook);
  return hook;
}

void backward(const Tensor& root, bool retain_graph) {
  check_defined(root, "backward()");
  SLLM_CHECK(root.numel() == 1,
             str("backward() without a gradient needs a one-element tensor, got shape ", shape_str(root.shape())),
             "reduce to a scalar (sum/mean) first, or pass the output gradient: backward(root, grad)");
  Tensor one = Tensor::full(root.shape(), 1.0f);
  backward(root, one.to(root.device()), retain_graph);
}

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  check_defined(root, "backward()");
  SLLM_CHECK(root.requires_grad(), "backward(): the tensor does not require grad and has no graph",
             "set requires_grad on a parameter it depends on, and don't compute it under NoGradGuard");
  check_shape(grad, root.shape(), "backward() gradient");
  if (!root.impl().grad_fn) {  // the root is a leaf itself
    accumulate_leaf(root, grad);
    return;
  }
  std::shared_ptr<Node> root_ptr = root.impl().grad_fn;
  Node* root_node = root_ptr.get();
  SLLM_CHECK(!root_node->freed, str("backward through the graph of '", root_node->op, "' a second time"),
             "the graph is freed by backward(); pass retain_graph=true to the first call to backward twice");

  std::unordered_map<Node*, Tensor> pending;  // gradient w.r.t. each node's output
  pending[root_node] = grad;
  const std::vector<std::shared_ptr<Node>> order = topological_order(root_ptr);
  // With a leaf-ready hook: the edges still to come into each leaf.
  std::unordered_map<const TensorImpl*, int64_t> edges_left;
  if (g_leaf_ready_hook) {
    for (const auto& node : order)
      for (const Tensor& in : node->inputs)
        if (in.defined() && in.requires_grad() && !in.impl().grad_fn) ++edges_left[&in.impl()];
  }
  for (const std::shared_ptr<Node>& owned : order) {
    Node* node = owned.get();
    auto it = pending.find(node);
    if (it == pending.end()) continue;  // no gradient reached this node
    Tensor g = it->second;
    pending.erase(it);
    SLLM_CHECK(!node->freed && node->backward,
               str("backward through the graph of '", node->op, "' a second time"),
               "the graph is freed by backward(); pass retain_graph=true to the first call to backward twice");
    std::vector<Tensor> grads = node->backward(g);
    SLLM_ASSERT(grads.size() == node->inputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      const bool leaf = in.defined() && in.requires_grad() && !in.impl().grad_fn;
      if (leaf && grads[i].defined()) accumulate_leaf(in, grads[i]);
      if (leaf && g_leaf_ready_hook) {
        auto left = edges_left.find(&in.impl());
        if (left != edges_left.end() && --left->second == 0) g_leaf_ready_hook(in);
      }
      if (!grads[i].defined() || !in.defined() || !in.requires_grad() || leaf) continue;
      if (in.impl().grad_fn) {
        Node* child = in.impl().grad_fn.get();
        auto slot = pending.find(child);
        if (slot == pending.end()) {
          pending.emplace(child, grads[i]);
        } else if (sole_owner(slot->second)) {
          accumulate(slot->second, grads[i]);  // nobody else sees this buffer: add in place
        } else {
          // Out of place: backward closures may return the same tensor for several inputs
          // (add passes g through to both), so an in-place += could corrupt a sibling.
          Tensor sum = slot->second.clone();
          accumulate(sum, grads[i]);
          slot->second = sum;
        }
      }
    }
    if (!retain_graph) {
      node->backward = nullptr;  // frees the saved tensors the closure captured
      node->inputs.clear();
      node->freed = true;
    }
  }
}

Tensor checkpoint(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x) {
  if (!grad_enabled()) return fn(x);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = fn(x);
  }
  SavedTensor sx(x, "checkpoint");
  const bool x_grad = x.requires_grad();
  record(y, "checkpoint", {x}, [fn, sx, x_grad](const Tensor& g) {
    Tensor xi = sx.get().detach();  // a leaf sharing x's storage: the recomputation's input
    xi.set_requires_grad(x_grad);
    const Tensor yi = fn(xi);
    if (yi.requires_grad()) backward(yi, g);  // parameters inside fn accumulate here
    return std::vector<Tensor>{x_grad ? xi.grad() : Tensor()};
  });
  return y;
}

// Moves out of `node` the producer nodes that nothing else references, so that destroying
// `node` does not recurse into them; the closure goes first, since its saved tensors share
// the inputs' TensorImpls.
static void detach_sole_producers(Node& node, std::vector<std::shared_ptr<Node>>& out) {
  node.backward = nullptr;
  for (Tensor& in : node.inputs) {
    if (!in.defined()) continue;
    const std::shared_ptr<TensorImpl>& impl = in.impl_ptr();
    if (impl.use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1) out.push_back(std::move(impl->grad_fn));
  }
  node.inputs.clear();
}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending;
  detach_sole_producers(*this, pending);
  while (!pending.empty()) {
    std::shared_ptr<Node> next = std::move(pending.back());
    pending.pop_back();
    detach_sole_producers(*next, pending);
  }  // `next` dies here with no inputs left: no recursion
}

}  // namespace sllm::autograd

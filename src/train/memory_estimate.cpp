#include "train/memory_estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include <omp.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "lora/lora_config.h"
#include "ops/linear_detail.h"
#include "quant/quantized_weight.h"

namespace sllm::train {

TrainMethod parse_train_method(const std::string& name) {
  if (name == "full") return TrainMethod::Full;
  if (name == "lora") return TrainMethod::Lora;
  SLLM_CHECK(name == "qlora", str("unknown method '", name, "'"), "use --method full, lora or qlora");
  return TrainMethod::QLora;
}

const char* train_method_name(TrainMethod method) {
  switch (method) {
    case TrainMethod::Full: return "full";
    case TrainMethod::Lora: return "lora";
    case TrainMethod::QLora: return "qlora";
  }
  return "?";
}

namespace {

constexpr int64_t kF32 = 4, kBF16 = 2, kI32 = 4, kU8 = 1;
constexpr int64_t kVocabPad = 128;  // ops/loss.cpp: the bf16 LM head pads V to a multiple of 128

// The bytes a device's allocator really hands out for a request: the CUDA caching allocator
// rounds below 1 MiB to 512 bytes and above to 2 MiB (kernels/cuda/caching_allocator.cpp);
// on the CPU the requested size (RSS counts pages, a rounding far below 15%).
int64_t block_bytes(int64_t nbytes, Device device) {
  if (device == Device::CPU || nbytes <= 0) return std::max<int64_t>(nbytes, 0);
  const int64_t unit = nbytes < (int64_t(1) << 20) ? 512 : (int64_t(2) << 20);
  return (nbytes + unit - 1) / unit * unit;
}

// NF4 with double quantization (Dettmers et al. 2023, "QLoRA", section 2): 4 bits per
// weight, one 8-bit absmax per block of 64 weights, one fp32 constant per 256 absmax blocks
// plus the fp32 mean subtracted before quantizing the absmax (0.127 bits per weight).
int64_t nf4_bytes(int64_t n) { return (n + 1) / 2 + (n + 63) / 64 + ((n + 64 * 256 - 1) / (64 * 256)) * kF32 + kF32; }

// The forward pass as a graph of tensor sizes, recorded the way autograd records it: an op
// records when an input requires grad or one of its own weights trains. A recorded op keeps
// alive what its backward closure saves: its inputs for op(), none of them for link_op()
// (add, slice, cast, dropout, RoPE: the graph holds only storage-less links to them,
// autograd.cpp graph_link), plus `extras`. Sizes are tallied by
// layer (0: embeddings, 1..L: blocks, L+1: final norm and head) for the backward timeline.
class ForwardGraph {
 public:
  ForwardGraph(int layers, Device device) : kept_(size_t(layers + 2), 0), largest_(size_t(layers + 2), 0), device_(device) {}
  void set_layer(int layer) { layer_ = layer; }

  int op(const std::vector<int>& inputs, int64_t out_bytes, bool weights_train = false,
         const std::vector<int64_t>& extras = {}, bool keeps_output = false) {
    bool record = weights_train;
    for (int i : inputs) record = record || tensors_[size_t(i)].requires_grad;
    tensors_.push_back({out_bytes, record, layer_, false});
    const int out = int(tensors_.size()) - 1;
    if (record) {
      for (int i : inputs) keep(i);
      for (int64_t e : extras) add_kept(layer_, e);
      if (keeps_output) keep(out);
    }
    return out;
  }
  // An op whose backward reads none of its inputs' values.
  int link_op(const std::vector<int>& inputs, int64_t out_bytes, const std::vector<int64_t>& extras = {}) {
    bool record = false;
    for (int i : inputs) record = record || tensors_[size_t(i)].requires_grad;
    tensors_.push_back({out_bytes, record, layer_, false});
    if (record)
      for (int64_t e : extras) add_kept(layer_, e);
    return int(tensors_.size()) - 1;
  }
  bool requires_grad(int t) const { return tensors_[size_t(t)].requires_grad; }
  int64_t bytes(int t) const { return tensors_[size_t(t)].bytes; }
  bool kept(int t) const { return tensors_[size_t(t)].kept; }
  int64_t kept_in(int layer) const { return kept_[size_t(layer)]; }
  int64_t largest_in(int layer) const { return largest_[size_t(layer)]; }
  // What a layer's forward made and did not keep (freed once its consumer ran).
  int64_t unkept_in(int layer) const {
    int64_t s = 0;
    for (const Sym& t : tensors_)
      if (t.layer == layer && !t.kept) s += block_bytes(t.bytes, device_);
    return s;
  }
  int64_t kept_total() const {
    int64_t s = 0;
    for (int64_t k : kept_) s += k;
    return s;
  }

 private:
  struct Sym {
    int64_t bytes;
    bool requires_grad;
    int layer;
    bool kept;
  };
  void keep(int i) {
    Sym& s = tensors_[size_t(i)];
    if (s.kept) return;
    s.kept = true;
    add_kept(s.layer, s.bytes);
  }
  void add_kept(int layer, int64_t bytes) {
    const int64_t b = block_bytes(bytes, device_);
    kept_[size_t(layer)] += b;
    largest_[size_t(layer)] = std::max(largest_[size_t(layer)], b);
  }

  std::vector<Sym> tensors_;
  std::vector<int64_t> kept_, largest_;
  int layer_ = 0;
  Device device_;
};

struct LinearSpec {
  std::string name;  // the HF module path's last part ("c_attn", "q_proj")
  std::string path;  // the HF module path
  int64_t in, out;
  bool bias;
};

// The trunk's Linears of one block, in nn/*.cpp's order (nn::Transformer::linears()).
std::vector<LinearSpec> block_linears(const nn::ModelConfig& c, int64_t l) {
  const int64_t C = c.n_embd, H = c.n_inner, kv = c.n_kv_head * c.head_dim();
  if (c.family == nn::Family::GPT2) {
    const std::string p = "transformer.h." + std::to_string(l);
    return {{"c_attn", p + ".attn.c_attn", C, 3 * C, true},
            {"c_proj", p + ".attn.c_proj", C, C, true},
            {"c_fc", p + ".mlp.c_fc", C, H, true},
            {"c_proj", p + ".mlp.c_proj", H, C, true}};
  }
  const std::string p = "model.layers." + std::to_string(l);
  return {{"q_proj", p + ".self_attn.q_proj", C, C, false},     {"k_proj", p + ".self_attn.k_proj", C, kv, false},
          {"v_proj", p + ".self_attn.v_proj", C, kv, false},     {"o_proj", p + ".self_attn.o_proj", C, C, false},
          {"gate_proj", p + ".mlp.gate_proj", C, H, false},      {"up_proj", p + ".mlp.up_proj", C, H, false},
          {"down_proj", p + ".mlp.down_proj", H, C, false}};
}

// LoRA targets as lora::select_targets resolves them (PEFT's rule, lora::match_target).
bool targeted(const MemoryRequest& r, const LinearSpec& s) {
  if (r.method == TrainMethod::Full) return false;
  if (r.lora_targets.size() == 1 && r.lora_targets[0] == "all-linear") return true;
  for (const std::string& t : r.lora_targets)
    if (lora::match_target(s.path, t)) return true;
  return false;
}

void check_request(const MemoryRequest& r) {
  r.config.validate();
  SLLM_CHECK(r.batch >= 1, str("batch ", r.batch, " is below 1"), "use --batch 1 or more");
  SLLM_CHECK(r.seq >= 1 && r.seq <= r.config.n_ctx, str("seq ", r.seq, " is outside [1, ", r.config.n_ctx, "]"),
             "the sequence length must fit the model's context (n_positions / max_position_embeddings)");
  SLLM_CHECK(r.device == Device::CUDA || r.precision == ops::Precision::FP32,
             str("--precision ", ops::precision_name(r.precision), " needs --device cuda"),
             "tf32 and bf16 use GPU tensor cores; on the CPU train in fp32");
  if (r.method == TrainMethod::Full) return;
  SLLM_CHECK(r.lora_r > 0, str("LoRA rank ", r.lora_r, " is not positive"), "use --lora-r 8, 16 or 32");
  SLLM_CHECK(r.lora_alpha > 0, str("LoRA alpha ", r.lora_alpha, " is not positive"), "use --lora-alpha 2*r");
  SLLM_CHECK(r.lora_dropout >= 0 && r.lora_dropout < 1, str("LoRA dropout ", r.lora_dropout, " is outside [0, 1)"),
             "use --lora-dropout 0.05");
  SLLM_CHECK(!r.lora_targets.empty(), "no LoRA target", "use --lora-targets all-linear or a list such as q_proj,v_proj");
  const bool all_linear = r.lora_targets.size() == 1 && r.lora_targets[0] == "all-linear";
  if (all_linear) return;
  std::vector<std::string> names;
  for (const LinearSpec& s : block_linears(r.config, 0))
    if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
  std::string valid;
  for (const std::string& n : names) valid += (valid.empty() ? "" : ", ") + n;
  for (const std::string& t : r.lora_targets) {
    SLLM_CHECK(t != "all-linear", "'all-linear' mixed with other LoRA target names", "use all-linear alone, or list the module names");
    bool any = false;
    for (const LinearSpec& s : block_linears(r.config, 0)) any = any || lora::match_target(s.path, t);
    SLLM_CHECK(any, str("the LoRA target '", t, "' matches no Linear of this ", r.config.family_name(), " model"),
               str("valid names: ", valid, ", or all-linear"));
  }
}

// Everything about one request the estimate needs, in one place.
struct Plan {
  const MemoryRequest& r;
  const nn::ModelConfig& c;
  int64_t N, T, C, H, V, NH, kv, HD;
  bool bf16, full, lora_dropout;
  int64_t act;  // bytes per activation element of the compute dtype
  float scale;
  explicit Plan(const MemoryRequest& req)
      : r(req), c(req.config), N(req.batch * req.seq), T(req.seq), C(c.n_embd), H(c.n_inner), V(c.vocab_size),
        NH(c.n_head), kv(c.n_kv_head * c.head_dim()), HD(c.head_dim()), bf16(req.precision == ops::Precision::BF16),
        full(req.method == TrainMethod::Full), lora_dropout(!full && req.lora_dropout > 0),
        act(bf16 ? kBF16 : kF32),
        scale(float(req.lora_alpha / (req.rslora ? std::sqrt(double(req.lora_r)) : double(req.lora_r)))) {}
  int64_t block(int64_t bytes) const { return block_bytes(bytes, r.device); }
};

// nn::Linear::forward, adapted or not (lora::LoraLayer::forward). fp32: one node,
// ops::lora_linear, keeping x, u = dropout(x)·Aᵀ (N, r) and the dropout mask (dropout(x) is
// rebuilt in backward). bf16: composed ops: h = dropout(x) (an f32 round trip),
// down = h·Aᵀ, up = down·(s·B)ᵀ, base + up, each kept as an input of the next.
int linear(ForwardGraph& g, const Plan& p, int x, const LinearSpec& s, int64_t* transient) {
  const int64_t R = p.r.lora_r;
  if (targeted(p.r, s) && !p.bf16) {
    std::vector<int64_t> extras{kF32 * p.N * R};
    if (p.lora_dropout) {
      extras.push_back(kU8 * p.N * s.in);
      *transient = std::max(*transient, p.block(kF32 * p.N * s.in));  // dropout(x), freed after forward
    }
    // QLoRA dequantizes W for each product: on a GPU the whole of it (f32 here); on the CPU
    // one tile at a time, counted with the kernels' workspace.
    if (p.r.method == TrainMethod::QLora && p.r.device == Device::CUDA)
      *transient = std::max(*transient, p.block(kF32 * s.in * s.out));
    return g.op({x}, kF32 * p.N * s.out, true, extras);
  }
  const int base = g.op({x}, p.act * p.N * s.out, p.full);
  if (!targeted(p.r, s)) return base;
  int h = x;
  if (p.lora_dropout) {
    const int64_t n = p.N * s.in;
    if (p.bf16) {
      const int f = g.link_op({x}, kF32 * n);
      h = g.link_op({g.link_op({f}, kF32 * n, {kU8 * n})}, kBF16 * n);
    } else {
      h = g.link_op({x}, kF32 * n, {kU8 * n});
    }
  }
  const int down = g.op({h}, p.act * p.N * R, true);
  std::vector<int> up_in{down};
  std::vector<int64_t> up_extras;
  if (p.scale != 1.0f) {  // ops::scale(B, s): a tensor of its own (and its bf16 copy)
    up_in.push_back(g.op({}, kF32 * s.out * R, true));
    if (p.bf16) up_extras.push_back(kBF16 * s.out * R);
  }
  const int up = g.op(up_in, p.act * p.N * s.out, true, up_extras);
  if (p.r.method == TrainMethod::QLora) *transient = std::max(*transient, p.block(kBF16 * s.in * s.out));
  return g.link_op({base, up}, p.act * p.N * s.out);
}

// ops::attention (or attention_qkv on one packed projection) on q, k, v; keeps its output
// and the row log-sum-exp. bf16 runs the tensor-core kernel only for head dims that are a
// multiple of 16 up to 128; other head dims go through fp32 copies (ops/attention.cpp).
int attention(ForwardGraph& g, const Plan& p, int q, int k, int v) {
  const std::vector<int64_t> lse{kF32 * p.N * p.NH};
  if (p.bf16 && (p.HD % 16 != 0 || p.HD > 128)) {
    const int qf = g.link_op({q}, kF32 * p.N * p.C), kf = g.link_op({k}, kF32 * p.N * p.kv),
              vf = g.link_op({v}, kF32 * p.N * p.kv);
    return g.link_op({g.op({qf, kf, vf}, kF32 * p.N * p.C, false, lse, true)}, kBF16 * p.N * p.C);
  }
  return g.op({q, k, v}, p.act * p.N * p.C, false, lse, true);
}

int norm(ForwardGraph& g, const Plan& p, int x, bool layernorm) {
  std::vector<int64_t> stats{kF32 * p.N};
  if (layernorm) stats.push_back(kF32 * p.N);  // mean and rstd; RMSNorm keeps rstd only
  return g.op({x}, p.act * p.N * p.C, p.full, stats);
}

int gpt2_block(ForwardGraph& g, const Plan& p, int x, int64_t l, int64_t* transient) {
  const std::vector<LinearSpec> lin = block_linears(p.c, l);
  const int qkv = linear(g, p, norm(g, p, x, true), lin[0], transient);
  int a;
  if (p.bf16 && p.HD % 16 == 0 && p.HD <= 128) {  // attention_qkv reads the packed rows in place
    a = g.op({qkv}, kBF16 * p.N * p.C, false, {kF32 * p.N * p.NH}, true);
  } else {  // three slice copies, then attention
    const int q = g.link_op({qkv}, p.act * p.N * p.C), k = g.link_op({qkv}, p.act * p.N * p.C),
              v = g.link_op({qkv}, p.act * p.N * p.C);
    a = attention(g, p, q, k, v);
  }
  const int x1 = g.link_op({x, linear(g, p, a, lin[1], transient)}, kF32 * p.N * p.C);
  const int u = linear(g, p, norm(g, p, x1, true), lin[2], transient);
  const int m = linear(g, p, g.op({u}, p.act * p.N * p.H), lin[3], transient);  // GELU keeps its input
  return g.link_op({x1, m}, kF32 * p.N * p.C);
}

int llama_block(ForwardGraph& g, const Plan& p, int x, int64_t l, int64_t* transient) {
  const std::vector<LinearSpec> lin = block_linears(p.c, l);
  const int h = norm(g, p, x, false);
  const int q = linear(g, p, h, lin[0], transient), k = linear(g, p, h, lin[1], transient),
            v = linear(g, p, h, lin[2], transient);
  const int qr = g.link_op({q}, p.act * p.N * p.C), kr = g.link_op({k}, p.act * p.N * p.kv);  // RoPE
  const int x1 = g.link_op({x, linear(g, p, attention(g, p, qr, kr, v), lin[3], transient)}, kF32 * p.N * p.C);
  const int h2 = norm(g, p, x1, false);
  const int gate = linear(g, p, h2, lin[4], transient), up = linear(g, p, h2, lin[5], transient);
  const int m = linear(g, p, g.op({gate, up}, p.act * p.N * p.H), lin[6], transient);  // SwiGLU
  return g.link_op({x1, m}, kF32 * p.N * p.C);
}

struct ParamBytes {
  int64_t weights = 0, copies = 0, trainable_params = 0, frozen_params = 0;
  int64_t grads = 0;                // allocated blocks of the trainable tensors' gradients
  std::vector<int64_t> layer_grads; // per layer (0: embeddings, L+1: final norm and head)
};

// Every parameter tensor with where it lives, whether it trains and whether mixed precision
// keeps a bf16 copy of it (the weights ops::linear reads, and the padded LM head).
ParamBytes parameter_bytes(const Plan& p) {
  const nn::ModelConfig& c = p.c;
  const int L = int(c.n_layer);
  ParamBytes out;
  out.layer_grads.assign(size_t(L + 2), 0);
  auto add = [&](int layer, int64_t n, bool trains, bool bf16_copy, bool nf4) {
    (trains ? out.trainable_params : out.frozen_params) += n;
    out.weights += p.block(nf4 ? nf4_bytes(n) : kF32 * n);
    if (p.bf16 && bf16_copy && !nf4) out.copies += p.block(kBF16 * n);
    if (trains) out.layer_grads[size_t(layer)] += p.block(kF32 * n);
  };
  const bool qlora = p.r.method == TrainMethod::QLora;
  const int64_t C = p.C, Vp = (p.V + kVocabPad - 1) / kVocabPad * kVocabPad;
  add(0, p.V * C, p.full, false, false);  // token embedding
  if (c.family == nn::Family::GPT2) add(0, c.n_ctx * C, p.full, false, false);
  const int norms = c.family == nn::Family::GPT2 ? 2 : 1;  // LayerNorm: weight and bias
  for (int64_t l = 0; l < L; ++l) {
    const int layer = int(l) + 1;
    for (int n = 0; n < 2 * norms; ++n) add(layer, C, p.full, false, false);
    for (const LinearSpec& s : block_linears(c, l)) {
      add(layer, s.in * s.out, p.full, true, qlora);
      if (s.bias) add(layer, s.out, p.full, true, false);
      if (targeted(p.r, s)) {
        add(layer, p.r.lora_r * s.in, true, true, false);                   // A (r, in)
        add(layer, s.out * p.r.lora_r, true, p.scale == 1.0f, false);       // B (out, r); bf16: s·B is copied per step
      }
    }
  }
  for (int n = 0; n < norms; ++n) add(L + 1, C, p.full, false, false);
  if (!c.tie_embeddings) add(L + 1, p.V * C, p.full, false, false);
  if (p.bf16) out.copies += p.block(kBF16 * Vp * C);  // the LM head's padded bf16 copy (ops/loss.cpp)
  if (c.family == nn::Family::Llama) out.weights += 2 * p.block(kF32 * c.n_ctx * (p.HD / 2));  // RoPE cos, sin tables
  for (int64_t g : out.layer_grads) out.grads += g;
  return out;
}

// The CPU kernels' buffers that stay resident once used: each thread's GEMM pack buffers,
// grown to the largest op(A) and op(B) blocks of the step's products (kernels.h
// sgemm_pack_floats), and QLoRA's one dequantized tile of W with its scales
// (quant/quantized_weight.cpp: at most kTileElements floats, whole rows).
int64_t cpu_workspace_bytes(const Plan& p, bool frozen_head) {
  const int threads = p.r.threads > 0 ? p.r.threads : omp_get_max_threads();
  int64_t a = 0, b = 0, tile = 0;
  const auto gemm = [&](int64_t M, int64_t N, int64_t K) {
    const kernels::GemmPackFloats f = kernels::sgemm_pack_floats(M, N, K, threads);
    a = std::max(a, f.a);
    b = std::max(b, f.b);
  };
  // y = x·Wᵀ for W (out, in) over `rows` rows: forward, dx, and dW when W trains.
  const auto product = [&](int64_t rows, int64_t in, int64_t out, bool trains) {
    gemm(rows, out, in);
    gemm(rows, in, out);
    if (trains) gemm(out, in, rows);
  };
  const bool qlora = p.r.method == TrainMethod::QLora;
  const int64_t R = p.r.lora_r;
  for (const LinearSpec& s : block_linears(p.c, 0)) {
    if (qlora) {  // one tile of whole rows at a time
      const int64_t rows = std::min(s.out, std::max<int64_t>(1, quant::QuantizedWeight::kTileElements / s.in));
      product(p.N, s.in, rows, false);
      tile = std::max(tile, kF32 * (rows * s.in + (rows * s.in + 31) / 32));  // the tile and its block scales
    } else {
      product(p.N, s.in, s.out, p.full);
    }
    if (targeted(p.r, s)) {
      product(p.N, s.in, R, true);   // u = dropout(x)·Aᵀ
      product(p.N, R, s.out, true);  // u·Bᵀ
    }
  }
  if (frozen_head) {
    const int64_t rows = std::min(p.N, ops::detail::lm_head_chunk_rows(p.V));
    gemm(rows, p.V, p.C);
    gemm(rows, p.C, p.V);
  } else {
    product(p.N, p.C, p.V, p.full);
  }
  return int64_t(threads) * (a + b) * kF32 + tile;
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%10.1f MiB", double(bytes) / double(1 << 20));
  return buf;
}

}  // namespace

MemoryRequest memory_request_for_run(const nn::ModelConfig& config, const nlohmann::json& caller_options,
                                     Device device, ops::Precision precision) {
  MemoryRequest r;
  r.config = config;
  r.device = device;
  r.precision = precision;
  const nlohmann::json& o = caller_options;
  r.batch = o.value("batch", r.batch);
  r.seq = o.value("seq", r.seq);
  r.method = parse_train_method(o.value("method", std::string("full")));
  r.lora_r = o.value("lora_r", r.lora_r);
  r.lora_alpha = o.value("lora_alpha", r.lora_alpha);
  r.lora_dropout = o.value("lora_dropout", r.lora_dropout);
  r.rslora = o.value("rslora", r.rslora);
  if (o.contains("lora_targets")) r.lora_targets = lora::parse_targets(o["lora_targets"].get<std::string>());
  return r;
}

MemoryEstimate estimate_memory(const MemoryRequest& r) {
  check_request(r);
  const Plan p(r);
  const nn::ModelConfig& c = r.config;
  const int L = int(c.n_layer);
  const bool gpt2 = c.family == nn::Family::GPT2;
  MemoryEstimate e;
  const ParamBytes params = parameter_bytes(p);
  e.trainable_params = params.trainable_params;
  e.frozen_params = params.frozen_params;
  e.weights = params.weights;
  e.weight_copies = params.copies;
  e.gradients = params.grads;
  e.optimizer = 2 * params.grads;  // AdamW's m and v: fp32, the shape of each trainable tensor
  if (!p.full) {
    std::set<std::string> seen;
    for (const LinearSpec& s : block_linears(c, 0))
      if (targeted(r, s) && seen.insert(s.name).second) e.lora_modules.push_back(s.name);
  }

  // ---- forward: what is kept for backward -------------------------------------------
  ForwardGraph g(L, r.device);
  int64_t transient = 0;  // the largest short-lived buffer of forward (QLoRA's dequantized weight)
  const bool cuda = r.device == Device::CUDA;
  // The batch (ids and targets, held by the objective through the step).
  g.op({}, 0, true, {2 * kI32 * p.N});
  // Embeddings: a trainable table's backward keeps the ids (on a GPU grouped by id).
  const auto ids_extra = [&](int64_t n, int64_t rows) { return cuda ? kI32 * (n + rows + 1) : kI32 * n; };
  int x = g.op({}, kF32 * p.N * p.C, p.full, {ids_extra(p.N, p.V)});
  if (gpt2) x = g.link_op({x, g.op({}, kF32 * p.T * p.C, p.full, {ids_extra(p.T, c.n_ctx)})}, kF32 * p.N * p.C);
  for (int64_t l = 0; l < L; ++l) {
    g.set_layer(int(l) + 1);
    x = gpt2 ? gpt2_block(g, p, x, l, &transient) : llama_block(g, p, x, l, &transient);
  }
  g.set_layer(L + 1);
  const int hf = norm(g, p, x, gpt2);
  // The head (ops::linear_cross_entropy). fp32: logits (N, V), the loss keeps its row lse
  // and a copy of the targets; backward makes dlogits (N, V) beside them. bf16 on CUDA: one
  // (N, Vp) bf16 buffer that the loss kernel overwrites with dlogits, nothing beside it.
  int64_t head_grad_peak = 0;  // live above the kept tensors while the head runs backward
  const int64_t head_w_grad = p.full ? p.block(kF32 * p.V * p.C) : 0;
  // f32 on the CPU under a frozen head (LoRA, QLoRA): ops/loss.cpp's chunked path makes the
  // gradient of the mean in forward, from one chunk of logits it overwrites with dlogits and
  // the per-row losses, lse and dlosses; the node keeps dx (N, C), returned as is in backward.
  const bool frozen_head = r.device == Device::CPU && !p.bf16 && !p.full;
  if (p.bf16) {
    const int64_t Vp = (p.V + kVocabPad - 1) / kVocabPad * kVocabPad;
    g.op({hf}, kF32, p.full, {kBF16 * p.N * Vp});
    head_grad_peak = p.block(kBF16 * p.N * p.C) + head_w_grad;
  } else if (frozen_head) {
    g.op({hf}, kF32, false, {kF32 * p.N * p.C});
    const int64_t rows = std::min(p.N, ops::detail::lm_head_chunk_rows(p.V));
    transient = std::max(transient, p.block(kF32 * rows * p.V) + 3 * p.block(kF32 * p.N));
  } else {
    const int logits = g.op({hf}, kF32 * p.N * p.V, p.full);
    g.op({logits}, kF32, false, {kF32 * p.N, kI32 * p.N});
    const int64_t dlogits = p.block(kF32 * p.N * p.V), dlosses = p.block(kF32 * p.N);
    // cross-entropy's backward: logits and dlogits both alive; then the LM head's backward,
    // the logits freed: dlogits, dx (N, C) and the head's weight gradient.
    head_grad_peak = std::max(dlogits + dlosses, dlogits - (g.kept(logits) ? p.block(g.bytes(logits)) : 0) +
                                                     p.block(kF32 * p.N * p.C) + head_w_grad);
  }
  // Activation checkpointing (autograd::checkpoint): through forward a block keeps only its
  // input (N, C); backward rebuilds the block's graph, so one block's kept tensors come back
  // at a time, with its gradients beside them.
  const int64_t block_input = p.block(kF32 * p.N * p.C);
  int64_t recomputed = 0;  // the largest rebuilt block with its backward buffers
  if (r.grad_checkpoint)
    for (int l = 1; l <= L; ++l) recomputed = std::max(recomputed, g.kept_in(l) + 2 * g.largest_in(l));
  e.saved_for_backward = r.grad_checkpoint ? g.kept_in(0) + g.kept_in(L + 1) + L * block_input : g.kept_total();
  e.activations = e.saved_for_backward + std::max({head_grad_peak - head_w_grad, transient, recomputed});

  // ---- backward: the timeline's maximum of live tensors -------------------------------
  // Nodes run from the head down; a block's kept tensors go when its backward has run, its
  // weight gradients stay until the optimizer step. Within a block: the upstream gradient
  // (N, C) and two buffers as large as its largest kept tensor (an op's input gradient
  // while the next one's is made).
  int64_t worst = e.saved_for_backward + std::max(head_grad_peak, transient);
  int64_t kept = e.saved_for_backward - g.kept_in(L + 1);
  int64_t grads = params.layer_grads[size_t(L + 1)] + (c.tie_embeddings ? head_w_grad : 0);
  const int64_t upstream = p.block(kF32 * p.N * p.C);
  for (int l = L; l >= 1; --l) {
    grads += params.layer_grads[size_t(l)];
    worst = std::max(worst, kept + grads + upstream + 2 * g.largest_in(l) + (r.grad_checkpoint ? g.kept_in(l) : 0));
    kept -= r.grad_checkpoint ? block_input : g.kept_in(l);
  }
  // The embeddings' backward: a fresh (V, C) table gradient added into the tied one.
  const int64_t embed_grad = p.full ? p.block(kF32 * p.V * p.C) : 0;
  worst = std::max(worst, kept + params.grads + upstream + (c.tie_embeddings ? embed_grad : 0));
  e.peak_live = e.weights + e.weight_copies + e.optimizer + worst;

  if (r.device == Device::CPU) {
    // Freed activation blocks stay in the host allocator's cache while the weight gradients
    // (other sizes) are new blocks: the rows add up.
    e.baseline = r.baseline_bytes;
    e.workspace = cpu_workspace_bytes(p, frozen_head);
    // The host allocator keeps freed blocks for reuse by exact size: a layer's temporaries
    // (made in forward, not kept) stay resident after it, and the next layer reuses them.
    // With checkpointed blocks, forward runs each block without a graph: everything it makes
    // is a temporary (the rebuilt graph in backward reuses those blocks, counted above).
    int64_t temporaries = 0;
    for (int l = 0; l <= L + 1; ++l) {
      const bool checkpointed = r.grad_checkpoint && l >= 1 && l <= L;
      temporaries = std::max(temporaries, g.unkept_in(l) + (checkpointed ? g.kept_in(l) : 0));
    }
    e.activations += temporaries;
    e.total = e.baseline + e.weights + e.weight_copies + e.gradients + e.optimizer + e.activations + e.workspace;
  } else {
    e.total = e.peak_live;
  }
  return e;
}

std::string format_memory_table(const MemoryRequest& r, const MemoryEstimate& e) {
  const nn::ModelConfig& c = r.config;
  std::string out;
  out += str("memory (predicted): ", c.family_name(), " ", c.n_layer, "x", c.n_embd, ", ", train_method_name(r.method));
  if (r.method != TrainMethod::Full) {
    std::string mods;
    for (const std::string& m : e.lora_modules) mods += (mods.empty() ? "" : ",") + m;
    out += str(" r=", r.lora_r, " on ", mods);
  }
  out += str(", batch ", r.batch, " x seq ", r.seq, r.grad_checkpoint ? ", checkpointed blocks" : "", ", ",
             device_name(r.device), " ", ops::precision_name(r.precision), "\n");
  out += str("  parameters        ", e.trainable_params, " trainable, ", e.frozen_params, " frozen\n");
  out += str("  weights         ", mib(e.weights), r.method == TrainMethod::QLora ? "  (NF4 base + double-quantized constants)" : "", "\n");
  if (e.weight_copies > 0) out += str("  bf16 weight copies", mib(e.weight_copies).substr(2), "\n");
  out += str("  gradients       ", mib(e.gradients), "\n");
  out += str("  optimizer state ", mib(e.optimizer), "  (AdamW m, v)\n");
  out += str("  activations     ", mib(e.activations), "  (", mib(e.saved_for_backward).substr(4), " kept for backward)\n");
  if (r.device == Device::CPU) {
    out += str("  kernel workspace", mib(e.workspace), "  (GEMM pack buffers", r.method == TrainMethod::QLora ? ", the dequantized tile" : "", ")\n");
    out += str("  runtime baseline", mib(e.baseline), "  (this process's RSS before the model)\n");
    out += str("  total (peak RSS)", mib(e.total), "\n");
  } else {
    out += str("  total (peak)    ", mib(e.total), "  (allocator peak: backward frees activations as gradients appear)\n");
  }
  return out;
}

nlohmann::json memory_json(const MemoryRequest& r, const MemoryEstimate& e) {
  nlohmann::json j{{"family", r.config.family_name()},
                   {"method", train_method_name(r.method)},
                   {"batch", r.batch},
                   {"seq", r.seq},
                   {"grad_checkpoint", r.grad_checkpoint},
                   {"device", device_name(r.device)},
                   {"precision", ops::precision_name(r.precision)},
                   {"trainable_params", e.trainable_params},
                   {"frozen_params", e.frozen_params},
                   {"weights_bytes", e.weights},
                   {"weight_copies_bytes", e.weight_copies},
                   {"gradients_bytes", e.gradients},
                   {"optimizer_bytes", e.optimizer},
                   {"activations_bytes", e.activations},
                   {"saved_for_backward_bytes", e.saved_for_backward},
                   {"workspace_bytes", e.workspace},
                   {"baseline_bytes", e.baseline},
                   {"peak_live_bytes", e.peak_live},
                   {"total_bytes", e.total}};
  if (r.method != TrainMethod::Full) {
    j["lora_r"] = r.lora_r;
    j["lora_modules"] = e.lora_modules;
  }
  return j;
}

}  // namespace sllm::train

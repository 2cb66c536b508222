// `sllm bench train`: training throughput of one full step, the same step as the pretraining
// loop (src/train/trainer.cpp): forward, cross-entropy, backward, gradient clipping at norm
// 1.0, AdamW update, zero_grad. The model is built from a preset or config.json and
// initialized with seed 0; the token batches are uniform random ids from a fixed seed, drawn
// before the clock starts. Two untimed warm-up steps, then N timed steps; the figures are
// medians over the timed steps (tokens/s = B * T / median step time).
//
// With --device cuda the model, its gradients and the optimizer state live on the GPU, and
// --precision picks fp32 (TF32 off), tf32 (fp32 with TF32 GEMMs) or bf16 mixed precision
// (src/ops/mixed_precision.h; the default on CUDA). The clock is read after synchronizing
// with the GPU, and the JSON adds "mfu":
// model FLOPs utilization = 6 * params * tokens/s / peak (the 6N FLOPs per token of a
// forward + backward, Kaplan et al. 2020, "Scaling Laws for Neural Language Models",
// section 2.1; attention's FLOPs not counted), with peak = 989e12, the dense BF16 tensor
// core peak of an H100 SXM (NVIDIA H100 datasheet; the H200 has the same compute). The
// fp32 path cannot get near it (its non-tensor peak is 67e12): it is the baseline that bf16
// mixed precision is measured against.
//
// --profile (CUDA only) times every kernel, cuBLAS GEMM, memset and copy of the timed steps
// on the GPU with CUDA events (kernels/cuda/profile.cpp) and adds a per-name table: calls and
// GPU ms per step, share of the summed GPU time. Recording the events adds host time per
// launch, so a profiled run's ms/step is a little above an unprofiled one's.
//
// --method lora trains a LoRA adapter (src/lora; defaults as `sllm sft`: all-linear, r 16,
// alpha 32, dropout 0.05) on the frozen model instead of every weight; the JSON's
// trainable_params says how many numbers the optimizer updates. peak_mem_bytes is the
// process's peak RSS on the CPU and the caching allocator's peak on CUDA (ops/memory_usage.h),
// read after the timed steps, its window starting once the model, adapters and optimizer are
// built (ops::reset_peak_memory): one method per process, so two runs compare their peaks.
//
// tools/bench_vs_pytorch.py runs this next to the same model in PyTorch.
#include <nlohmann/json.hpp>
#include <omp.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "cli/command.h"
#include "cli/openmp_wait.h"
#include "core/args.h"
#include "core/error.h"
#include "core/rng.h"
#include "lora/lora_config.h"
#include "lora/lora_model.h"
#include "quant/quantize_model.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "ops/memory_usage.h"
#include "ops/ops.h"
#include "optim/optim.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::cli {
namespace {

// CPU seconds used by all threads of the process so far. On a shared machine the wall time
// of a step swings with other jobs; the CPU time of a one-thread run barely does.
double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One row of the --profile table: GPU time of one kernel (or GEMM shape, memset, ...).
struct ProfileRow {
  std::string name;
  double calls_per_step, ms_per_step;
};

// The GPU profile of the timed steps, per step, largest first (empty without CUDA).
std::vector<ProfileRow> profile_rows(int64_t steps) {
  std::vector<ProfileRow> rows;
#if SLLM_HAVE_CUDA
  for (const auto& k : kernels::cuda::profile_report())
    rows.push_back({k.name, double(k.calls) / double(steps), k.ms / double(steps)});
#else
  (void)steps;
#endif
  return rows;
}

void print_profile_table(const std::vector<ProfileRow>& rows, double wall_ms_per_step) {
  double total = 0;
  for (const auto& r : rows) total += r.ms_per_step;
  std::printf("  GPU time per step by kernel (CUDA events around every launch, GEMM, memset, copy):\n");
  std::printf("  %9s %8s %6s  %s\n", "ms/step", "calls", "%", "kernel");
  for (const auto& r : rows)
    std::printf("  %9.3f %8.1f %5.1f%%  %s\n", r.ms_per_step, r.calls_per_step,
                total > 0 ? 100.0 * r.ms_per_step / total : 0.0, r.name.c_str());
  std::printf("  GPU time in kernels %.2f ms/step of %.2f ms/step wall (the gap: launch overhead, host work, syncs)\n",
              total, wall_ms_per_step);
}

int run_bench_train(const std::vector<std::string>& argv) {
  Args args("bench train", argv,
            {{"--config", FlagSpec::Value, "model preset (tiny, small, small-llama, gpt2-124m, smollm2-135m) or config.json (default small)"},
             {"--steps", FlagSpec::Value, "timed steps (default 10; 5 for gpt2-124m and smollm2-135m)"},
             {"--batch", FlagSpec::Value, "sequences per step (default 8; 4 for gpt2-124m and smollm2-135m)"},
             {"--seq", FlagSpec::Value, "tokens per sequence (default 256, or the model's context if shorter)"},
             {"--threads", FlagSpec::Value, "OpenMP threads (default: all cores)"},
             {"--device", FlagSpec::Value, "cpu or cuda (default cpu)"},
             {"--precision", FlagSpec::Value, "auto, fp32, tf32 or bf16 (tf32, bf16: CUDA only); auto = bf16 on cuda, fp32 on cpu"},
             {"--profile", FlagSpec::Switch, "CUDA only: GPU time per kernel over the timed steps (CUDA events)"},
             {"--method", FlagSpec::Value, "full (every weight trains), lora (frozen base + adapters) or qlora (lora over an NF4 + double-quantized base) [full]"},
             {"--grad-checkpoint", FlagSpec::Switch, "recompute each block in backward instead of keeping its activations"},
             {"--lora-r", FlagSpec::Value, "LoRA rank [16]"},
             {"--lora-alpha", FlagSpec::Value, "LoRA alpha [32]"},
             {"--lora-dropout", FlagSpec::Value, "LoRA dropout on the adapter input [0.05]"},
             {"--lora-targets", FlagSpec::Value, "comma list of module names or all-linear [all-linear]"},
             {"--json", FlagSpec::Switch, "print one JSON line"}});
  const std::string config_name = args.get("--config", "small");
  const bool big = config_name == "gpt2-124m" || config_name == "smollm2-135m";
  const int64_t steps = args.get_int("--steps", big ? 5 : 10);
  const int64_t B = args.get_int("--batch", big ? 4 : 8);
  const nn::ModelConfig cfg = nn::load_config(config_name);
  const int64_t T = args.get_int("--seq", std::min<int64_t>(256, cfg.n_ctx));
  const int64_t threads = args.get_int("--threads", omp_get_max_threads());
  SLLM_CHECK(steps >= 1 && steps <= 100000, str("sllm bench train: --steps must be in [1, 100000], got ", steps), "e.g. --steps 10");
  SLLM_CHECK(B >= 1, str("sllm bench train: --batch must be >= 1, got ", B), "e.g. --batch 8");
  SLLM_CHECK(T >= 1, str("sllm bench train: --seq must be >= 1, got ", T), "e.g. --seq 256");
  SLLM_CHECK(threads >= 1 && threads <= 4096, str("sllm bench train: --threads must be in [1, 4096], got ", threads),
             "e.g. --threads 2");
  omp_set_num_threads(static_cast<int>(threads));
  const Device device = ops::parse_device(args.get("--device", "cpu"));
  ops::init_device(device);
  const ops::Precision precision = ops::parse_precision(args.get("--precision", "auto"), device);
  const bool profile = args.has("--profile");
  SLLM_CHECK(!profile || device == Device::CUDA, "sllm bench train: --profile times GPU kernels and needs --device cuda",
             "add --device cuda, or drop --profile");

  SLLM_CHECK(T <= cfg.n_ctx, str("sllm bench train: --seq ", T, " exceeds the model's context of ", cfg.n_ctx),
             "lower --seq");
  const std::string method = args.get("--method", "full");
  SLLM_CHECK(method == "full" || method == "lora" || method == "qlora",
             str("sllm bench train: unknown --method '", method, "'"), "pass --method full, lora or qlora");
  const bool adapters = method != "full";
  for (const char* flag : {"--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets"})
    SLLM_CHECK(adapters || !args.has(flag), str("sllm bench train: ", flag, " needs --method lora or qlora"),
               "add --method lora, or drop the LoRA flags");
  lora::LoraConfig lora_cfg;  // the sft command's defaults (src/cli/cmd_sft.cpp)
  lora_cfg.r = args.get_int("--lora-r", 16);
  lora_cfg.lora_alpha = static_cast<float>(args.get_double("--lora-alpha", 32.0));
  lora_cfg.lora_dropout = static_cast<float>(args.get_double("--lora-dropout", 0.05));
  lora_cfg.target_modules = lora::parse_targets(args.get("--lora-targets", "all-linear"));
  if (adapters) lora::check_config(lora_cfg);

  nn::Transformer model(cfg);  // GPT-2 initialization, seed 0
  // QLoRA: every trunk Linear to NF4 + double quantization at blocksize 64 (QLoRA's recipe),
  // on the CPU before the move; the dense weights are released as they are replaced.
  if (method == "qlora") quant::quantize_model(model, quant::QuantOptions{});
  model.to(device);
  model.set_compute_dtype(ops::apply_precision(precision));
  model.set_gradient_checkpointing(args.has("--grad-checkpoint"));
  // LoRA freezes every base weight (no gradient, no optimizer state) and trains A and B.
  std::unique_ptr<lora::LoraModel> lora;
  std::vector<nn::Parameter> trainable = model.parameters();
  if (adapters) {
    lora = std::make_unique<lora::LoraModel>(model);
    lora->add_adapter("default", lora_cfg);
    lora->set_training(true);
    trainable = lora->parameters();
  }
  int64_t trainable_params = 0;
  std::vector<optim::ParamRef> refs;
  for (auto& p : trainable) {
    refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
    trainable_params += p.value.numel();
  }
  optim::AdamW opt(refs, optim::AdamWConfig{});
  // The peak of training, not of building the model: QLoRA's dense f32 weights exist only
  // until they are quantized (a quantized model directory never holds them at all).
  ops::reset_peak_memory(device);
  const float lr = 1e-3f, grad_clip = 1.0f;

  // Fresh random ids for every step (warm-up included), all drawn before timing.
  const int64_t total = steps + 2;
  Rng rng(1234);
  std::vector<Tensor> inputs, targets;  // each (B, T) i32
  for (int64_t s = 0; s < total; ++s) {
    Tensor in = Tensor::empty({B, T}, DType::I32), tg = Tensor::empty({B, T}, DType::I32);
    int32_t* pi = in.mutable_i32();
    int32_t* pt = tg.mutable_i32();
    for (int64_t i = 0; i < B * T; ++i) {
      pi[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(cfg.vocab_size)));
      pt[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(cfg.vocab_size)));
    }
    inputs.push_back(in);
    targets.push_back(tg);
  }

  std::vector<double> ms, cpu_ms;
  double first_loss = 0, last_loss = 0;
  for (int64_t s = 0; s < total; ++s) {
#if SLLM_HAVE_CUDA
    if (profile && s == 2) kernels::cuda::profile_begin();  // the timed steps only
#endif
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_ms();
    if (lora) lora->set_dropout_step(static_cast<uint64_t>(s));
    Tensor loss = model.loss(inputs[s], targets[s]);
    autograd::backward(loss);
    opt.step(lr, optim::clip_scale(refs, grad_clip).scale);  // = clip_grad_norm, then step(lr)
    opt.zero_grad();
    ops::synchronize(device);
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = process_cpu_ms() - c0;
    const double l = loss.item();
    if (s == 0) first_loss = l;
    last_loss = l;
    if (s >= 2) {
      ms.push_back(elapsed);
      cpu_ms.push_back(cpu);
    }
  }
#if SLLM_HAVE_CUDA
  if (profile) kernels::cuda::profile_end();
#endif
  const std::vector<ProfileRow> prof = profile ? profile_rows(steps) : std::vector<ProfileRow>{};
  const int64_t peak_mem = ops::peak_memory_bytes(device);
  const double median_ms = median(ms), median_cpu_ms = median(cpu_ms);
  double mean_ms = 0;
  for (const double m : ms) mean_ms += m / double(ms.size());
  std::sort(ms.begin(), ms.end());
  const double tokens_per_s = static_cast<double>(B * T) / (median_ms / 1000.0);
  constexpr double kPeakBf16DenseFlops = 989e12;  // H100/H200 SXM, see the top of this file
  const double mfu = 6.0 * static_cast<double>(cfg.num_parameters()) * tokens_per_s / kPeakBf16DenseFlops;
  const std::string mfu_json = device == Device::CUDA ? str(",\"mfu\":", mfu) : std::string();
  std::string profile_json;
  if (profile) {
    constexpr size_t kJsonRows = 40;  // the heaviest; the long tail adds little
    profile_json = ",\"profile\":[";
    for (size_t i = 0; i < std::min(prof.size(), kJsonRows); ++i)
      profile_json += str(i ? "," : "", "{\"name\":", nlohmann::json(prof[i].name).dump(), ",\"calls_per_step\":",
                          prof[i].calls_per_step, ",\"ms_per_step\":", prof[i].ms_per_step, "}");
    profile_json += "]";
  }

  if (args.has("--json")) {
    std::printf(
        "{\"config\":\"%s\",\"batch\":%lld,\"seq\":%lld,\"ms_per_step\":%.2f,\"tokens_per_s\":%.1f,\"threads\":%lld,"
        "\"steps\":%lld,\"params\":%lld,\"min_ms\":%.2f,\"max_ms\":%.2f,\"cpu_ms_per_step\":%.2f,\"first_loss\":%.6f,\"last_loss\":%.6f,"
        "\"device\":\"%s\",\"precision\":\"%s\",\"method\":\"%s\",\"trainable_params\":%lld,\"peak_mem_bytes\":%lld,"
        "\"omp_wait\":%s%s%s}\n",
        config_name.c_str(), static_cast<long long>(B), static_cast<long long>(T), median_ms, tokens_per_s,
        static_cast<long long>(threads), static_cast<long long>(steps), static_cast<long long>(cfg.num_parameters()),
        ms.front(), ms.back(), median_cpu_ms, first_loss, last_loss, device_name(device), ops::precision_name(precision),
        method.c_str(), static_cast<long long>(trainable_params), static_cast<long long>(peak_mem),
        nlohmann::json(openmp_wait_policy()).dump().c_str(), mfu_json.c_str(), profile_json.c_str());
  } else {
    std::printf("bench train: %s (%lld params, %s: %lld trainable), batch %lld x seq %lld, %lld threads, %lld timed steps\n",
                config_name.c_str(), static_cast<long long>(cfg.num_parameters()), method.c_str(),
                static_cast<long long>(trainable_params), static_cast<long long>(B),
                static_cast<long long>(T), static_cast<long long>(threads), static_cast<long long>(steps));
    std::printf("  %.1f ms/step (median; min %.1f, max %.1f; CPU %.1f ms)  %.0f tokens/s  loss %.4f -> %.4f\n",
                median_ms, ms.front(), ms.back(), median_cpu_ms, tokens_per_s, first_loss, last_loss);
    if (device == Device::CPU) std::printf("  OpenMP wait: %s\n", openmp_wait_policy().c_str());
    std::printf("  peak memory %.1f MiB (%s)\n", double(peak_mem) / (1 << 20),
                device == Device::CUDA ? "caching allocator peak" : "peak RSS of the process");
    if (device == Device::CUDA)
      std::printf("  on %s, %s: MFU %.2f%% of the 989 TFLOPS bf16 dense peak\n", device_name(device),
                  ops::precision_name(precision), 100.0 * mfu);
    if (profile) print_profile_table(prof, mean_ms);
  }
  return 0;
}

CommandRegistrar registrar("bench train", "training-step throughput (forward, backward, AdamW) of a model preset",
                           run_bench_train);

}  // namespace
}  // namespace sllm::cli

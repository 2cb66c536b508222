#include "train/train_loop.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"
#include "dist/comm.h"
#include "core/progress.h"
#include "ops/device.h"
#include "ops/memory_usage.h"
#include "ops/ops.h"
#include "optim/optim.h"
#include "train/memory_estimate.h"

namespace sllm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The loop's options that change the math of a step; a resumed run keeps the checkpoint's.
json loop_math_options(const LoopOptions& o) {
  return json{{"grad_accum", o.grad_accum},     {"lr", o.lr},
              {"min_lr_ratio", o.min_lr_ratio}, {"weight_decay", o.weight_decay},
              {"grad_clip", o.grad_clip},       {"warmup", o.warmup}};
}

void restore_loop_math_options(const ResumePoint& resume, LoopOptions& o) {
  try {
    const json& saved = resume.options;
    o.grad_accum = saved.at("grad_accum");
    o.lr = saved.at("lr");
    o.min_lr_ratio = saved.at("min_lr_ratio");
    o.weight_decay = saved.at("weight_decay");
    o.grad_clip = saved.at("grad_clip");
    o.warmup = saved.at("warmup");
  } catch (const json::exception& e) {
    fail_damaged_state(resume, str("malformed trainer state: ", e.what()));
  }
}

// The optimizer's parameter list: the model's trainable parameters, in file order.
std::vector<optim::ParamRef> trainable_parameters(nn::Transformer& model, const LoopOptions& o) {
  const std::string& command = o.command;
  std::vector<optim::ParamRef> refs;
  if (o.trainable) {
    for (auto& p : o.trainable()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
  } else {
    for (auto& p : model.parameters())
      if (p.value.requires_grad()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
  }
  SLLM_CHECK(!refs.empty(), str(command, ": the model has no trainable parameter"),
             "unfreeze at least one parameter (requires_grad) before training");
  return refs;
}

// Names the loop writes itself; an objective's metric must not shadow them.
bool is_loop_metric(const std::string& name) {
  return name == "step" || name == "loss" || name == "lr" || name == "tokens_per_s" || name == "grad_norm" ||
         name == "peak_mem_bytes" || name == "ranks" || name == "rank_peak_mem_bytes" || name == "comm_s" || name.rfind("val_", 0) == 0;
}

// A multi-rank run's checks before its first step: this loop and objective can run on these
// ranks, and every rank was started with the same seed, options and data (each rank fails
// with the same message otherwise, instead of training replicas that silently drift apart).
void check_ranks(dist::Comm& comm, const Objective& objective, const LoopOptions& o, const json& saved_options,
                 const ResumePoint* resume) {
  const int world = comm.size();
  const int64_t saved_world = resume ? resume->options.value("ranks", int64_t{1}) : world;
  SLLM_CHECK(saved_world == world,
             str(o.command, " --resume: the checkpoint was trained on ", saved_world, " rank(s), this run has ", world),
             str("resume with the same number of ranks (mpirun -np ", saved_world,
                 "): the ranks' slices make up each step's batch, so another count changes the batches"));
  if (world == 1) return;
  SLLM_CHECK(objective.ranks() == world,
             str(o.command, ": data-parallel training on ", world, " ranks is built for pretrain, sft, dpo and reward train only"),
             "run this command as one process (without mpirun)");
  SLLM_CHECK(o.device == "cpu" || dist::built_with_nccl(),
             str(o.command, ": --device ", o.device, " on ", world, " ranks needs NCCL, and this sllm was built without it"),
             "install NCCL (the PyPI wheel nvidia-nccl-cu13), reconfigure with -DNCCL_ROOT=<its nvidia/nccl folder> and "
             "rebuild; or train on the CPU (--device cpu)");
  SLLM_CHECK(o.device == "cpu" || o.data_parallel.zero == 0,
             str(o.command, ": --zero 1 shards host optimizer state; --device ", o.device, " keeps it on the GPU"),
             "drop --zero on GPUs (each keeps the whole optimizer state), or train on the CPU");
  const std::string seed = saved_options.contains("seed") ? saved_options["seed"].dump() : "";
  comm.check_same(dist::hash_bytes(seed.data(), seed.size()), "seed (--seed)");
  const std::string options = saved_options.dump() + "|" + o.config + "|" + std::to_string(o.steps) + "|" +
                              std::to_string(o.data_parallel.zero) + std::to_string(o.data_parallel.deterministic_reduce);
  comm.check_same(dist::hash_bytes(options.data(), options.size()), "options (flags and model config)");
  comm.check_same(objective.data_fingerprint(), "training data");
}

// Empties the run directory's leftovers before the run writes anything: a resumed run drops
// the steps logged after its checkpoint; a new run (no `latest`, so any metrics.jsonl is the
// log of a run that died before its first checkpoint, which nothing can resume) starts the
// log afresh rather than mixing that run's steps with its own.
void prepare_run_directory(const LoopOptions& o, int64_t start_step) {
  const fs::path run = o.out_dir;
  std::error_code ec;
  fs::create_directories(run, ec);
  SLLM_CHECK(!ec, str("cannot create run directory '", o.out_dir, "': ", ec.message()), "check the path and permissions");
  remove_crash_litter(run);
  truncate_metrics(run / "metrics.jsonl", start_step);
}

// The predicted breakdown (train/memory_estimate.h) before the first step. On the CPU the
// runtime baseline is this process's RSS now less the model it already holds. A prediction
// that cannot be made is a note, never a failed run.
void print_memory_prediction(nn::Transformer& model, const LoopOptions& o, Device device, ops::Precision precision) {
  try {
    MemoryRequest request = memory_request_for_run(model.config(), o.caller_options, device, precision);
    request.grad_checkpoint = model.gradient_checkpointing();
    const MemoryEstimate model_only = estimate_memory(request);
    if (device == Device::CPU)
      request.baseline_bytes = std::max<int64_t>(0, ops::current_memory_bytes(Device::CPU) - model_only.weights);
    std::fputs(format_memory_table(request, estimate_memory(request)).c_str(), stdout);
  } catch (const Error& e) {
    std::printf("memory (predicted): not available (%s)\n", e.message().c_str());
  }
  std::fflush(stdout);
}

}  // namespace

void check_loop_options(const LoopOptions& o) {
  auto positive = [&](int64_t v, const char* flag) {
    SLLM_CHECK(v > 0, str(o.command, ": ", flag, " must be > 0, got ", v), "pass a positive integer");
  };
  positive(o.steps, "--steps");
  positive(o.grad_accum, "--grad-accum");
  SLLM_CHECK(o.lr > 0 && std::isfinite(o.lr), str(o.command, ": --lr must be > 0, got ", o.lr), "typical: 1e-3 for small models");
  SLLM_CHECK(o.eval_every >= 0 && o.save_every >= 0 && o.stop_at >= 0,
             str(o.command, ": --eval-every, --save-every and --stop-at must be >= 0"), "0 disables them");
  SLLM_CHECK(!o.out_dir.empty(), str(o.command, ": missing --out"), "pass a run directory, e.g. runs/my-run");
}

TrainResult train(nn::Transformer& model, Objective& objective, const LoopOptions& options, const ResumePoint* resume) {
  LoopOptions o = options;
  check_loop_options(o);
  if (resume) restore_loop_math_options(*resume, o);
  if (o.warmup < 0) o.warmup = std::max<int64_t>(1, o.steps / 20);
  const int64_t start_step = resume ? resume->step : 0;
  dist::Comm& comm = dist::world();
  const int world = comm.size();
  const bool root = comm.is_root();
  json saved_options = o.caller_options;
  saved_options.update(loop_math_options(o));
  if (world > 1) saved_options["ranks"] = world;  // one-rank checkpoints stay as they were
  check_ranks(comm, objective, o, saved_options, resume);

  // Several ranks on GPUs: NCCL picks this rank's GPU before anything is put on one (the
  // caller may have opened it already, when it moved the model itself).
  std::shared_ptr<dist::NcclComm> gpu = o.gpu_transport ? o.gpu_transport : open_gpu_transport(comm, o.device);
  // The model moves before the optimizer is built, so the moments are made on its device.
  const Device device = ops::parse_device(o.device);
  ops::init_device(device);
  model.to(device);
  const ops::Precision precision = ops::parse_precision(o.precision, device);
  model.set_compute_dtype(ops::apply_precision(precision));
  if (!o.quiet && root) print_memory_prediction(model, o, device, precision);
  const std::vector<optim::ParamRef> params = trainable_parameters(model, o);
  DataParallel dp(comm, o.data_parallel, params, gpu.get());
  optim::AdamWConfig acfg;
  acfg.weight_decay = static_cast<float>(o.weight_decay);
  optim::AdamW opt(params, acfg, dp.optimizer_spans());
  const optim::LrSchedule schedule{o.lr, o.lr * o.min_lr_ratio, o.warmup, o.steps};
  schedule.check();

  if (resume) {
    load_optimizer_state(resume->dir, opt);
    try {
      objective.restore_data_state(resume->data_state);
    } catch (const Error& e) {
      fail(str(resume->state_path, ": ", e.message()), e.hint());
    }
  }
  dp.broadcast_parameters();
  if (root) prepare_run_directory(o, start_step);

  const fs::path run = o.out_dir;
  std::ofstream metrics;
  if (root) {
    metrics.open(run / "metrics.jsonl", std::ios::app);
    SLLM_CHECK(metrics.good(), str("cannot open ", (run / "metrics.jsonl").string()), "check permissions");
  }
  const int64_t end_step = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
  // peak_mem_bytes is the peak of training, what `sllm memory` predicts: loading is not part
  // of it (a QLoRA base quantized on load held its dense f32 weights only until then).
  ops::reset_peak_memory(device);
  ProgressBar bar(o.steps, start_step);
  TrainResult result;
  // Each micro-batch's default share of the step: 1/K of it, and 1/N of that on each rank.
  const float equal_share = 1.0f / static_cast<float>(o.grad_accum * world);
  // --deterministic-reduce: each micro-batch's gradient is computed whole, then added in order.
  const bool sum_micro_batches = o.data_parallel.deterministic_reduce && o.grad_accum > 1;
  for (int64_t step = start_step + 1; step <= end_step; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    objective.begin_step(o.grad_accum);
    // [0]: the sum of weight · loss over this rank's micro-batches (weighted objectives), or
    // of the plain losses (equal shares: divided by K·N once summed over ranks).
    double loss_sum[1] = {0};
    bool weighted = false;
    int64_t tokens = 0;
    std::map<std::string, double> metric_sums;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      const MicroBatchLoss micro_batch = objective.next(model);
      weighted = micro_batch.weight >= 0;
      loss_sum[0] += weighted ? micro_batch.weight * micro_batch.loss.item() : micro_batch.loss.item();
      tokens += micro_batch.tokens;
      for (const auto& [name, value] : micro_batch.metrics) metric_sums[name] += value;
      // Gradients accumulate across micro-batches (and are summed across ranks below);
      // scaling each loss by its share makes the sum the gradient of the step's loss.
      const float share = weighted ? static_cast<float>(micro_batch.weight) : equal_share;
      const Tensor& loss = micro_batch.loss;
      if (micro == o.grad_accum - 1) dp.begin_overlap();  // the last backward: reduce as it goes
      autograd::backward(share != 1.0f ? ops::scale(loss, share) : loss);
      if (sum_micro_batches) dp.sum_micro_batch(micro);
    }
    if (sum_micro_batches) dp.finish_micro_batches();
    const auto comm_start = std::chrono::steady_clock::now();
    dp.end_overlap();
    dp.allreduce_gradients();
    dp.allreduce_sum(loss_sum, 1);
    double comm_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - comm_start).count();
    const double loss = weighted ? loss_sum[0] : loss_sum[0] / static_cast<double>(o.grad_accum * world);
    SLLM_CHECK(std::isfinite(loss), str("training diverged: loss is ", loss, " at step ", step),
               "lower --lr, or raise --warmup; resume from the last checkpoint");
    // Clipping's scale rides along the AdamW pass (bitwise clip_grad_norm then step). Every
    // rank holds the same summed gradients, so every rank finds the same norm.
    const optim::ClipScale clip = optim::clip_scale(params, o.grad_clip);
    const double lr = schedule.at(step);
    opt.step(static_cast<float>(lr), clip.scale);
    const auto gather_start = std::chrono::steady_clock::now();
    dp.gather_parameters();  // ZeRO-1: the other ranks' updated slices
    comm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - gather_start).count();
    opt.zero_grad();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tokens_per_s = static_cast<double>(tokens) / seconds;
    json line{{"step", step}, {"loss", loss}, {"lr", lr}, {"tokens_per_s", tokens_per_s}, {"grad_norm", clip.norm}};
    for (const auto& [name, sum] : metric_sums) {
      SLLM_CHECK(!is_loop_metric(name), str("objective metric '", name, "' shadows one the training loop writes"),
                 "rename the metric");
      line[name] = sum / static_cast<double>(o.grad_accum);
    }
    const bool eval_now = (o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps || step == 1;
    if (eval_now) {
      Evaluation eval;
      {
        autograd::NoGradGuard no_grad;
        eval = objective.evaluate(model);
      }
      line["val_loss"] = eval.loss;
      for (const auto& [name, value] : eval.metrics) line["val_" + name] = value;
      if (result.first_val_loss < 0) result.first_val_loss = eval.loss;
      result.last_val_loss = eval.loss;
    }
    // The process's peak so far (CPU: peak RSS; CUDA: the caching allocator's peak of live
    // blocks), after the step and any evaluation. Not bit-exact across a resume: tests that
    // compare a resumed run's metrics with a straight run's leave it out, as tokens_per_s.
    line["peak_mem_bytes"] = ops::peak_memory_bytes(device);
    if (world > 1) {
      line["ranks"] = world;
      line["comm_s"] = comm_seconds;  // rank 0's seconds in the step's gradient (and ZeRO-1 parameter) exchange
      line["rank_peak_mem_bytes"] = comm.allgather(static_cast<uint64_t>(ops::peak_memory_bytes(device)));
    }
    if (root) {
      metrics << line.dump() << "\n";
      metrics.flush();
    }
    result.last_step = step;
    result.last_loss = loss;
    if (!o.quiet && root) {
      char fields[160];
      std::snprintf(fields, sizeof fields, "loss %.4f | lr %.2e | %.0f tok/s%s", loss, lr, tokens_per_s,
                    line.contains("val_loss") ? str(" | val ", line["val_loss"].get<double>()).c_str() : "");
      bar.update(step, fields);
    }
    const bool save_now = (o.save_every > 0 && step % o.save_every == 0) || step == end_step;
    if (save_now) {
      // Rank 0 writes; under ZeRO-1 the others send their slices of the moments meanwhile.
      if (root) {
        const json state{{"step", step},
                         {"total_steps", o.steps},
                         {"options", saved_options},
                         {"config", o.config},
                         {"loader", objective.data_state()},
                         {"threads", omp_get_max_threads()}};
        if (opt.sharded()) {
          save_checkpoint(run, step, model, [&](io::SafetensorsWriter& file) { dp.add_optimizer_state(file, opt); },
                          opt.step_count(), o.tokenizer, state, o.write_model);
        } else {
          save_checkpoint(run, step, model, opt, o.tokenizer, state, o.write_model);
        }
      } else if (opt.sharded()) {
        dp.send_optimizer_state(opt);
      }
    }
  }
  if (!o.quiet && root) bar.finish();
  return result;
}

}  // namespace sllm::train

#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/batch_loader.h"
#include "data/token_shard.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "optim/optim.h"
#include "tokenizer/tokenizer.h"

namespace sllm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The options that change the math of a step; a resumed run must keep them.
json math_options(const PretrainOptions& o) {
  return json{{"batch", o.batch},   {"seq", o.seq},       {"grad_accum", o.grad_accum}, {"lr", o.lr},
              {"min_lr_ratio", o.min_lr_ratio}, {"weight_decay", o.weight_decay}, {"grad_clip", o.grad_clip},
              {"warmup", o.warmup}, {"seed", o.seed}};
}

void validate(const PretrainOptions& o) {
  auto positive = [](int64_t v, const char* flag) {
    SLLM_CHECK(v > 0, str("sllm pretrain: ", flag, " must be > 0, got ", v), "pass a positive integer");
  };
  positive(o.steps, "--steps");
  positive(o.batch, "--batch");
  positive(o.seq, "--seq");
  positive(o.grad_accum, "--grad-accum");
  positive(o.eval_batches, "--eval-batches");
  SLLM_CHECK(o.lr > 0 && std::isfinite(o.lr), str("sllm pretrain: --lr must be > 0, got ", o.lr), "typical: 1e-3 for small models");
  SLLM_CHECK(o.eval_every >= 0 && o.save_every >= 0 && o.stop_at >= 0, "sllm pretrain: --eval-every, --save-every and --stop-at must be >= 0",
             "0 disables them");
  SLLM_CHECK(!o.data_dir.empty(), "sllm pretrain: missing --data", "pass the directory written by `sllm prepare`");
  SLLM_CHECK(!o.out_dir.empty(), "sllm pretrain: missing --out", "pass a run directory, e.g. runs/my-run");
}

struct Batch {
  Tensor inputs, targets;  // (B, T) i32
};

double evaluate(nn::Transformer& model, data::BatchLoader& val, int64_t batches, int64_t B, int64_t T) {
  autograd::NoGradGuard no_grad;
  val.reset();
  double total = 0;
  Batch b{Tensor::empty({B, T}, DType::I32), Tensor::empty({B, T}, DType::I32)};
  for (int64_t i = 0; i < batches; ++i) {
    val.next(b.inputs.mutable_i32(), b.targets.mutable_i32());
    total += model.loss(b.inputs, b.targets).item();
  }
  return total / static_cast<double>(batches);
}

std::string checkpoint_name(int64_t step) { return "ckpt-" + std::to_string(step); }

void save_checkpoint(const PretrainOptions& o, const nn::Transformer& model, const optim::AdamW& opt,
                     const data::BatchLoader& loader, const std::optional<tokenizer::Tokenizer>& tok, int64_t step) {
  const std::string name = checkpoint_name(step);
  AtomicDirectory dir((fs::path(o.out_dir) / name).string());
  const fs::path tmp = dir.temp_path();
  io::save_config(model.config(), (tmp / "config.json").string());
  io::save_weights(model, (tmp / "model.safetensors").string());
  if (tok) tok->save(tmp.string());
  io::SafetensorsWriter writer;
  std::vector<std::pair<std::string, Tensor>> state = opt.state_tensors();
  for (auto& [key, t] : state) {
    t = t.to(Device::CPU);  // GPU moments are copied to the host (kept alive until write)
    writer.add(key, "F32", std::vector<int64_t>(t.shape().begin(), t.shape().end()), t.f32(), t.nbytes());
  }
  writer.set_metadata("step_count", std::to_string(opt.step_count()));
  writer.write((tmp / "optimizer.safetensors").string());
  json st{{"step", step},           {"total_steps", o.steps},   {"options", math_options(o)},
          {"config", o.config},     {"loader", loader.state()}, {"threads", omp_get_max_threads()}};
  write_file_atomic((tmp / "trainer_state.json").string(), st.dump(2) + "\n");
  dir.commit();
  write_file_atomic((fs::path(o.out_dir) / "latest").string(), name + "\n");
}

// Keeps the metrics lines up to `step` (a crash after the last checkpoint may have logged
// steps that the resumed run will redo).
void truncate_metrics(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() > step) break;
    kept += line + "\n";
  }
  write_file_atomic(path.string(), kept);
}

// A process that died mid-write leaves its temp names "<name>.tmp.<pid>.<n>" (atomic_file.h)
// in the run directory: never complete, never read. They are removed before the run writes
// anything, because a restarted process may get the same pid (containers reuse low pids) and
// then draw exactly those names for its own temp files, which would make its writes fail.
void remove_crash_litter(const fs::path& run) {
  std::error_code ec;
  if (!fs::is_directory(run, ec)) return;
  std::vector<fs::path> litter;
  for (const auto& entry : fs::directory_iterator(run, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t tag = name.rfind(".tmp.");
    if (tag == std::string::npos || tag == 0) continue;
    const std::string suffix = name.substr(tag + 5);  // "<pid>.<n>"
    const size_t dot = suffix.find('.');
    auto digits = [](const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; };
    if (dot != std::string::npos && digits(suffix.substr(0, dot)) && digits(suffix.substr(dot + 1))) litter.push_back(entry.path());
  }
  for (const auto& path : litter) fs::remove_all(path, ec);
}

std::string read_latest(const std::string& run) {
  const fs::path latest = fs::path(run) / "latest";
  SLLM_CHECK(fs::exists(latest), str("--resume: '", run, "' has no checkpoint (no 'latest' file)"),
             "start the run without --resume, or point --out at a run that saved a checkpoint");
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  SLLM_CHECK(!name.empty() && fs::is_directory(fs::path(run) / name),
             str("--resume: ", latest.string(), " names '", name, "', which is not a checkpoint directory"),
             "fix or delete the 'latest' file so it names an existing ckpt-<step> directory");
  return name;
}

}  // namespace

PretrainResult pretrain(const PretrainOptions& options) {
  PretrainOptions o = options;
  validate(o);
  const fs::path run = o.out_dir;
  int64_t start_step = 0;
  json loader_state;
  fs::path ckpt;
  if (o.resume) {
    ckpt = run / read_latest(o.out_dir);
    const std::string state_path = (ckpt / "trainer_state.json").string();
    const std::string damaged_hint = "the checkpoint is damaged; resume from an earlier ckpt-<step> by editing RUN/latest";
    try {
      const json resume_state = json::parse(read_file(state_path));
      const json saved = resume_state.at("options");
      o.batch = saved.at("batch");
      o.seq = saved.at("seq");
      o.grad_accum = saved.at("grad_accum");
      o.lr = saved.at("lr");
      o.min_lr_ratio = saved.at("min_lr_ratio");
      o.weight_decay = saved.at("weight_decay");
      o.grad_clip = saved.at("grad_clip");
      o.warmup = saved.at("warmup");
      o.seed = saved.at("seed");
      start_step = resume_state.at("step");
      loader_state = resume_state.at("loader");
      SLLM_CHECK(start_step >= 1, str(state_path, ": step ", start_step, " is not a step a checkpoint is saved after"), damaged_hint);
      if (resume_state.at("total_steps").get<int64_t>() != o.steps)
        std::fprintf(stderr, "note: --steps %ld differs from the run's %ld; the LR schedule now targets %ld\n",
                     static_cast<long>(o.steps), static_cast<long>(resume_state.at("total_steps").get<int64_t>()),
                     static_cast<long>(o.steps));
      if (resume_state.at("threads").get<int>() != omp_get_max_threads())
        std::fprintf(stderr, "note: the run used %d threads, now %d: results stay valid but are no longer bit-identical\n",
                     resume_state.at("threads").get<int>(), omp_get_max_threads());
    } catch (const json::exception& e) {
      fail(str(state_path, ": malformed trainer state: ", e.what()), damaged_hint);
    }
    SLLM_CHECK(start_step < o.steps, str("--resume: the run already reached step ", start_step, " of ", o.steps),
               "raise --steps to train further");
  } else {
    SLLM_CHECK(!fs::exists(run / "latest"), str("run directory '", o.out_dir, "' already holds a run"),
               "pass --resume to continue it, or choose another --out");
  }
  if (o.warmup < 0) o.warmup = std::max<int64_t>(1, o.steps / 20);

  // Data.
  const fs::path data = o.data_dir;
  SLLM_CHECK(fs::exists(data / "train.bin") && fs::exists(data / "val.bin"),
             str("data directory '", o.data_dir, "' has no train.bin/val.bin"),
             "create it with `sllm prepare --tokenizer T --input FILE... --out DIR`");
  data::TokenShard train_shard = data::TokenShard::open((data / "train.bin").string());
  data::TokenShard val_shard = data::TokenShard::open((data / "val.bin").string());
  json meta;
  if (fs::exists(data / "meta.json")) meta = json::parse(read_file((data / "meta.json").string()), nullptr, false);
  if (o.tokenizer.empty() && meta.is_object() && meta.contains("tokenizer") && meta["tokenizer"].is_string())
    o.tokenizer = meta["tokenizer"].get<std::string>();

  // Model.
  std::unique_ptr<nn::Transformer> model;
  if (o.resume) {
    model = io::load_model(ckpt.string());
  } else {
    model = std::make_unique<nn::Transformer>(nn::load_config(o.config));
    model->init(o.seed);
  }
  const nn::ModelConfig& cfg = model->config();
  if (meta.is_object() && meta.contains("vocab_size"))
    SLLM_CHECK(meta["vocab_size"].get<int64_t>() <= cfg.vocab_size,
               str("the data's tokenizer has ", meta["vocab_size"].get<int64_t>(), " ids but the model's vocab_size is ", cfg.vocab_size),
               "use a config with a larger vocab_size, or a smaller tokenizer");
  SLLM_CHECK(o.seq <= cfg.n_ctx, str("--seq ", o.seq, " exceeds the model's context of ", cfg.n_ctx), "lower --seq");
  std::optional<tokenizer::Tokenizer> tok;
  if (!o.tokenizer.empty()) tok = tokenizer::Tokenizer::load(o.tokenizer);

  data::BatchLoader loader(train_shard, o.batch, o.seq, o.seed + 1, true);
  data::BatchLoader val_loader(val_shard, o.batch, o.seq, 0, false);
  const int64_t eval_batches = std::min<int64_t>(o.eval_batches, std::max<int64_t>(1, val_loader.windows_per_epoch() / o.batch));

  // The model moves before the optimizer is built, so the moments are made on its device.
  // Batches stay on the host: the ops validate the ids there and upload them.
  const Device device = ops::parse_device(o.device);
  ops::init_device(device);
  model->to(device);
  model->set_compute_dtype(ops::apply_precision(ops::parse_precision(o.precision, device)));
  std::vector<optim::ParamRef> refs;
  for (auto& p : model->parameters()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
  optim::AdamWConfig acfg;
  acfg.weight_decay = static_cast<float>(o.weight_decay);
  optim::AdamW opt(refs, acfg);
  const optim::LrSchedule schedule{o.lr, o.lr * o.min_lr_ratio, o.warmup, o.steps};
  schedule.check();

  if (o.resume) {
    io::SafetensorsFile f = io::SafetensorsFile::open((ckpt / "optimizer.safetensors").string());
    std::vector<std::pair<std::string, Tensor>> state;
    for (const auto& e : f.entries()) {
      SLLM_CHECK(e.dtype == "F32", str("optimizer state '", e.name, "' is not F32"), "the checkpoint is damaged");
      Tensor t = Tensor::empty(Shape(e.shape.begin(), e.shape.end()));
      std::memcpy(t.mutable_raw(), e.data, e.nbytes);
      state.emplace_back(e.name, t);
    }
    auto it = f.metadata().find("step_count");
    SLLM_CHECK(it != f.metadata().end(), "optimizer.safetensors lacks step_count", "the checkpoint is damaged");
    opt.load_state(state, std::stoll(it->second));
    try {
      loader.restore(loader_state);
    } catch (const Error& e) {
      fail(str((ckpt / "trainer_state.json").string(), ": ", e.message()), e.hint());
    }
    remove_crash_litter(run);
    truncate_metrics(run / "metrics.jsonl", start_step);
  } else {
    std::error_code ec;
    fs::create_directories(run, ec);
    SLLM_CHECK(!ec, str("cannot create run directory '", o.out_dir, "': ", ec.message()), "check the path and permissions");
    remove_crash_litter(run);
    // No `latest` here, so any metrics.jsonl is the log of a run that died before its first
    // checkpoint: nothing can resume it, and appending would mix its steps with ours.
    truncate_metrics(run / "metrics.jsonl", 0);
  }

  std::ofstream metrics(run / "metrics.jsonl", std::ios::app);
  SLLM_CHECK(metrics.good(), str("cannot open ", (run / "metrics.jsonl").string()), "check permissions");
  const int64_t end_step = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
  const int64_t B = o.batch, T = o.seq;
  Batch b{Tensor::empty({B, T}, DType::I32), Tensor::empty({B, T}, DType::I32)};
  ProgressBar bar(o.steps, start_step);
  PretrainResult result;
  for (int64_t step = start_step + 1; step <= end_step; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      loader.next(b.inputs.mutable_i32(), b.targets.mutable_i32());
      Tensor loss = model->loss(b.inputs, b.targets);
      loss_sum += loss.item();
      // Gradients accumulate across micro-batches; scaling each loss by 1/K makes the sum
      // the gradient of the mean loss over the K micro-batches.
      autograd::backward(o.grad_accum > 1 ? ops::scale(loss, 1.0f / static_cast<float>(o.grad_accum)) : loss);
    }
    const double loss = loss_sum / static_cast<double>(o.grad_accum);
    SLLM_CHECK(std::isfinite(loss), str("training diverged: loss is ", loss, " at step ", step),
               "lower --lr, or raise --warmup; resume from the last checkpoint");
    // Clipping's scale rides along the AdamW pass (bitwise clip_grad_norm then step).
    const optim::ClipScale clip = optim::clip_scale(refs, o.grad_clip);
    const double grad_norm = clip.norm;
    const double lr = schedule.at(step);
    opt.step(static_cast<float>(lr), clip.scale);
    opt.zero_grad();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tokens_per_s = static_cast<double>(B * T * o.grad_accum) / seconds;
    json line{{"step", step}, {"loss", loss}, {"lr", lr}, {"tokens_per_s", tokens_per_s}, {"grad_norm", grad_norm}};
    const bool eval_now = (o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps || step == 1;
    if (eval_now) {
      const double val = evaluate(*model, val_loader, eval_batches, B, T);
      line["val_loss"] = val;
      if (result.first_val_loss < 0) result.first_val_loss = val;
      result.last_val_loss = val;
    }
    metrics << line.dump() << "\n";
    metrics.flush();
    result.last_step = step;
    result.last_loss = loss;
    if (!o.quiet) {
      char fields[160];
      std::snprintf(fields, sizeof fields, "loss %.4f | lr %.2e | %.0f tok/s%s", loss, lr, tokens_per_s,
                    line.contains("val_loss") ? str(" | val ", line["val_loss"].get<double>()).c_str() : "");
      bar.update(step, fields);
    }
    const bool save_now = (o.save_every > 0 && step % o.save_every == 0) || step == end_step;
    if (save_now) save_checkpoint(o, *model, opt, loader, tok, step);
  }
  if (!o.quiet) bar.finish();
  return result;
}

}  // namespace sllm::train

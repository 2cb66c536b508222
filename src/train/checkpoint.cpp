#include "train/checkpoint.h"

#include <omp.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/model_files.h"
#include "io/safetensors.h"

namespace sllm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kDamagedHint = "the checkpoint is damaged; resume from an earlier ckpt-<step> by editing RUN/latest";

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

std::optional<ResumePoint> find_resume_point(const std::string& run_dir, bool resume, int64_t total_steps) {
  if (!resume) {
    SLLM_CHECK(!fs::exists(fs::path(run_dir) / "latest"), str("run directory '", run_dir, "' already holds a run"),
               "pass --resume to continue it, or choose another --out");
    return std::nullopt;
  }
  ResumePoint point;
  point.dir = fs::path(run_dir) / read_latest(run_dir);
  point.state_path = (point.dir / "trainer_state.json").string();
  try {
    const json state = json::parse(read_file(point.state_path));
    point.options = state.at("options");
    point.step = state.at("step");
    point.data_state = state.at("loader");
    SLLM_CHECK(point.step >= 1, str(point.state_path, ": step ", point.step, " is not a step a checkpoint is saved after"),
               kDamagedHint);
    const int64_t saved_total = state.at("total_steps");
    if (saved_total != total_steps)
      std::fprintf(stderr, "note: --steps %ld differs from the run's %ld; the LR schedule now targets %ld\n",
                   static_cast<long>(total_steps), static_cast<long>(saved_total), static_cast<long>(total_steps));
    const int saved_threads = state.at("threads");
    if (saved_threads != omp_get_max_threads())
      std::fprintf(stderr, "note: the run used %d threads, now %d: results stay valid but are no longer bit-identical\n",
                   saved_threads, omp_get_max_threads());
  } catch (const json::exception& e) {
    fail_damaged_state(point, str("malformed trainer state: ", e.what()));
  }
  SLLM_CHECK(point.step < total_steps, str("--resume: the run already reached step ", point.step, " of ", total_steps),
             "raise --steps to train further");
  return point;
}

void fail_damaged_state(const ResumePoint& point, const std::string& what) { fail(str(point.state_path, ": ", what), kDamagedHint); }

std::string checkpoint_name(int64_t step) { return "ckpt-" + std::to_string(step); }

void save_checkpoint(const fs::path& run, int64_t step, const nn::Transformer& model, const optim::AdamW& opt,
                     const tokenizer::Tokenizer* tok, const json& trainer_state,
                     const std::function<void(const std::string& dir)>& write_model) {
  std::vector<std::pair<std::string, Tensor>> state = opt.state_tensors();
  for (auto& [key, t] : state) t = t.to(Device::CPU);  // GPU moments are copied to the host (kept alive until written)
  const auto add = [&state](io::SafetensorsWriter& file) {
    for (const auto& [key, t] : state)
      file.add(key, "F32", std::vector<int64_t>(t.shape().begin(), t.shape().end()), t.f32(), t.nbytes());
  };
  save_checkpoint(run, step, model, add, opt.step_count(), tok, trainer_state, write_model);
}

void save_checkpoint(const fs::path& run, int64_t step, const nn::Transformer& model,
                     const std::function<void(io::SafetensorsWriter& file)>& add_optimizer_state,
                     int64_t optimizer_steps, const tokenizer::Tokenizer* tok, const json& trainer_state,
                     const std::function<void(const std::string& dir)>& write_model) {
  const std::string name = checkpoint_name(step);
  AtomicDirectory dir((run / name).string());
  const fs::path tmp = dir.temp_path();
  if (write_model) {
    write_model(tmp.string());
  } else {
    io::save_config(model.config(), (tmp / "config.json").string());
    io::save_weights(model, (tmp / "model.safetensors").string());
  }
  if (tok) tok->save(tmp.string());
  io::SafetensorsWriter writer;
  add_optimizer_state(writer);
  writer.set_metadata("step_count", std::to_string(optimizer_steps));
  writer.write((tmp / "optimizer.safetensors").string());
  write_file_atomic((tmp / "trainer_state.json").string(), trainer_state.dump(2) + "\n");
  dir.commit();
  write_file_atomic((run / "latest").string(), name + "\n");
}

void load_optimizer_state(const fs::path& ckpt, optim::AdamW& opt) {
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
}

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

}  // namespace sllm::train

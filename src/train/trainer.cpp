#include "train/trainer.h"

#include <memory>
#include <optional>

#include "core/error.h"
#include "dist/comm.h"
#include "io/model_files.h"
#include "nn/transformer.h"
#include "tokenizer/tokenizer.h"
#include "train/pretrain_objective.h"

namespace sllm::train {

using nlohmann::json;

namespace {

// The options of pretraining's own that change the math (the loop saves its own beside them).
json data_math_options(const PretrainOptions& o) { return json{{"batch", o.batch}, {"seq", o.seq}, {"seed", o.seed}}; }

void restore_data_math_options(const ResumePoint& resume, PretrainOptions& o) {
  try {
    o.batch = resume.options.at("batch");
    o.seq = resume.options.at("seq");
    o.seed = resume.options.at("seed");
  } catch (const json::exception& e) {
    fail_damaged_state(resume, str("malformed trainer state: ", e.what()));
  }
}

void validate(const PretrainOptions& o) {
  auto positive = [](int64_t v, const char* flag) {
    SLLM_CHECK(v > 0, str("sllm pretrain: ", flag, " must be > 0, got ", v), "pass a positive integer");
  };
  positive(o.batch, "--batch");
  positive(o.seq, "--seq");
  positive(o.eval_batches, "--eval-batches");
  SLLM_CHECK(!o.data_dir.empty(), "sllm pretrain: missing --data", "pass the directory written by `sllm prepare`");
}

}  // namespace

PretrainResult pretrain(const PretrainOptions& options) {
  PretrainOptions o = options;
  LoopOptions loop = loop_options_from(o, "sllm pretrain", o.config);
  check_loop_options(loop);
  validate(o);
  const std::optional<ResumePoint> resume = find_resume_point(o.out_dir, o.resume, o.steps);
  if (resume) restore_data_math_options(*resume, o);

  PretrainObjective objective(o.data_dir, o.batch, o.seq, o.seed, o.eval_batches, &dist::world());
  std::unique_ptr<nn::Transformer> model;
  if (resume) {
    model = io::load_model(resume->dir.string());
  } else {
    model = std::make_unique<nn::Transformer>(nn::load_config(o.config), nn::ParamInit::Zeros);
    model->init(o.seed);  // the run's seed (the constructor's Random would draw seed 0 first)
  }
  objective.check_model(model->config());
  const std::string tokenizer_path = o.tokenizer.empty() ? objective.data_tokenizer() : o.tokenizer;
  std::optional<tokenizer::Tokenizer> tok;
  if (!tokenizer_path.empty()) tok = tokenizer::Tokenizer::load(tokenizer_path);

  loop.caller_options = data_math_options(o);
  loop.data_parallel = o.data_parallel;
  loop.tokenizer = tok ? &*tok : nullptr;
  return train(*model, objective, loop, resume ? &*resume : nullptr);
}

}  // namespace sllm::train

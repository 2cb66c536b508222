// `sllm score`: teacher-forced log-probabilities of a token sequence under a model (and an
// optional LoRA adapter), as one JSON line
// {"loss": mean negative log-likelihood in nats, "logprobs": [log p(t_i+1 | t_0..t_i)]}
// (keys in that order: ordered_json).
#include <omp.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "infer/generate.h"
#include "infer/text_session.h"
#include "ops/device.h"

namespace sllm::cli {
namespace {

int run_score(const std::vector<std::string>& argv) {
  Args args("score", argv,
            {{"--model", FlagSpec::Value, "model directory or run directory (required unless --adapter names an existing base directory)"},
             {"--adapter", FlagSpec::Value,
              "LoRA adapter directory (PEFT files) or `sllm sft --method lora` run, applied on the model; without "
              "--model its base_model_name_or_path is the model"},
             {"--ids", FlagSpec::List, "token ids, comma-separated (e.g. 15496,995,0)"},
             {"--text", FlagSpec::Value, "text, encoded with the model directory's tokenizer.json"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda: where the model runs (logits come back to the host) [cpu]"}});
  infer::InferenceSpec spec;
  spec.model = args.has("--adapter") ? args.get("--model", "") : args.required("--model");
  spec.adapter = args.get("--adapter", "");
  spec.with_tokenizer = args.has("--text");
  SLLM_CHECK(args.has("--ids") != args.has("--text"), "sllm score: give exactly one of --ids and --text", args.usage());
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(threads >= 0, str("--threads must be >= 0, got ", threads), args.usage());
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  spec.device = ops::parse_device(args.get("--device", "cpu"));
  ops::init_device(spec.device);  // a missing GPU is reported before the model loads
  infer::InferenceModel m = infer::load_inference_model(spec);
  const std::vector<int32_t> ids = args.has("--ids") ? infer::parse_token_ids(args.get_list("--ids"), m.model->config().vocab_size)
                                                     : m.tokenizer->encode(args.get("--text", ""), /*allow_special=*/true);
  const std::vector<float> logprobs = infer::score_logprobs(*m.model, ids);
  nlohmann::ordered_json out = {{"loss", infer::mean_loss(logprobs)}, {"logprobs", logprobs}};
  const std::string line = out.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

CommandRegistrar reg("score", "log-probabilities and mean loss of a token sequence under a model (JSON line)", run_score);

}  // namespace
}  // namespace sllm::cli

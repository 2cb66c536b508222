// `sllm score`: teacher-forced log-probabilities of a token sequence under a model (and an
// optional LoRA adapter), as one JSON line
// {"loss": mean negative log-likelihood in nats, "logprobs": [log p(t_i+1 | t_0..t_i)]}
// (keys in that order: ordered_json).

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/inference_flags.h"
#include "core/args.h"
#include "core/error.h"
#include "infer/generate.h"
#include "infer/text_session.h"

namespace sllm::cli {
namespace {

int run_score(const std::vector<std::string>& argv) {
  Args args("score", argv,
            with_flags({{"--ids", FlagSpec::List, "token ids, comma-separated (e.g. 15496,995,0)"},
                        {"--text", FlagSpec::Value, "text, encoded with the model directory's tokenizer.json"}},
                       model_flags()));
  SLLM_CHECK(args.has("--ids") != args.has("--text"), "sllm score: give exactly one of --ids and --text", args.usage());
  const infer::InferenceSpec spec = read_model_flags(args, /*with_tokenizer=*/args.has("--text"));
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

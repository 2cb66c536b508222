// `sllm reward train`: a reward model on preference pairs (src/rl/reward_run.h).
// `sllm reward score`: a reward model's scores of a JSONL file, one JSON line per input line.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/finetune_flags.h"
#include "cli/loop_flags.h"
#include "core/args.h"
#include "dist/comm.h"
#include "core/error.h"
#include "data/preference_dataset.h"
#include "rl/reward_model.h"
#include "rl/reward_run.h"
#include "tokenizer/tokenizer.h"

namespace sllm::cli {
namespace {

using nlohmann::json;

int run_reward_train(const std::vector<std::string>& argv) {
  Args args("reward train", argv,
            {{"--model", FlagSpec::Value, "the model to start from: an SFT model or run directory (a new score head), or a reward model (required)"},
             {"--data", FlagSpec::Value, "JSONL of {\"prompt\", \"chosen\", \"rejected\"} (strings or chat messages) or {\"chosen\", \"rejected\"} conversations (required)"},
             {"--out", FlagSpec::Value, "run directory; every checkpoint is a reward-model directory (required)"},
             {"--method", FlagSpec::Value, "full (every weight) or lora (an adapter on the trunk, plus the score head) [full]"},
             {"--lora-r", FlagSpec::Value, "LoRA rank [16]"},
             {"--lora-alpha", FlagSpec::Value, "LoRA alpha: the update is scaled by alpha / r [32]"},
             {"--lora-dropout", FlagSpec::Value, "dropout on the adapter's input while training [0.05]"},
             {"--lora-targets", FlagSpec::Value, "comma list of module names (q_proj,v_proj) or all-linear [all-linear]"},
             {"--rslora", FlagSpec::Switch, "scale by alpha / sqrt(r) (rank-stabilized LoRA)"},
             {"--template", FlagSpec::Value, "chatml or none (plain prompt/chosen/rejected strings) [chatml]"},
             {"--truncate", FlagSpec::Switch, "cut responses of pairs longer than --seq (counted) instead of failing"},
             {"--val-fraction", FlagSpec::Value, "fraction of pairs held out for validation accuracy [0.1, at least 1]"},
             {"--val-count", FlagSpec::Value, "number of pairs held out (instead of --val-fraction)"},
             {"--epochs", FlagSpec::Value, "passes over the training pairs [1]"},
             {"--steps", FlagSpec::Value, "total optimizer steps (instead of --epochs)"},
             {"--batch", FlagSpec::Value, "pairs per micro-batch (each pair is two rows) [8]"},
             {"--seq", FlagSpec::Value, "tokens per row (prompt + response), at most the model's context [256]"},
             {"--grad-accum", FlagSpec::Value, "micro-batches per step [1]"},
             {"--lr", FlagSpec::Value, "peak learning rate [1e-4]"},
             {"--warmup", FlagSpec::Value, "warmup steps [5% of the steps]"},
             {"--weight-decay", FlagSpec::Value, "AdamW decoupled weight decay [0]"},
             {"--grad-clip", FlagSpec::Value, "global gradient-norm clip, 0 = off [1.0]"},
             {"--seed", FlagSpec::Value, "seed of the split, data order, score-head and LoRA init [1337]"},
             {"--eval-every", FlagSpec::Value, "evaluate on the held-out pairs every K steps, 0 = only at the end [100]"},
             {"--save-every", FlagSpec::Value, "checkpoint every K steps, 0 = only at the end [0]"},
             {"--stop-at", FlagSpec::Value, "stop after step K as if interrupted [0 = off]"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda [cpu]"},
             {"--precision", FlagSpec::Value, "auto, fp32, tf32 or bf16 (tf32, bf16: CUDA only) [auto]"},
             {"--deterministic-reduce", FlagSpec::Switch, "under mpirun: sum gradients in rank order (bit-identical to one process accumulating the ranks' slices)"},
             {"--zero", FlagSpec::Value, "under mpirun: 1 shards the optimizer state over the ranks (ZeRO-1) [0]"},
             {"--resume", FlagSpec::Switch, "continue the run in --out from its latest checkpoint"},
             {"--quiet", FlagSpec::Switch, "no progress bar"}});
  rl::RewardRunOptions o;
  o.method = args.get("--method", o.method);
  SLLM_CHECK(o.method == "full" || o.method == "lora", str("sllm reward train: unknown --method '", o.method, "'"),
             "pass --method full or lora");
  read_lora_flags(args, o, "sllm reward train", "lora");
  read_data_flags(args, o, "sllm reward train", "pairs");
  read_loop_flags(args, o);
  read_data_parallel_flags(args, o);
  const rl::RewardRunResult r = rl::reward_train(o);
  if (!dist::world().is_root()) return 0;  // rank 0 reports for the run
  std::fprintf(stderr, "done: step %ld of %ld, loss %.4f", static_cast<long>(r.last_step),
               static_cast<long>(r.total_steps), r.last_loss);
  if (r.last_val_loss >= 0)
    std::fprintf(stderr, ", val_loss %.4f (first %.4f), val_accuracy %.4f", r.last_val_loss, r.first_val_loss,
                 r.last_val_accuracy);
  std::fprintf(stderr, "\n");
  return 0;
}

// A line to score as one sequence: {"prompt", "completion"} (or "response"), strings or
// messages, or {"messages": [...]} whose trailing assistant turns are the response. It is
// rendered exactly as a preference pair's chosen side (preference_dataset.h).
std::vector<int32_t> render_single(const json& obj, const std::string& where, const tokenizer::Tokenizer& tok,
                                   data::SftTemplate chat_template) {
  json as_pair;
  if (obj.contains("messages")) {
    const json& messages = obj["messages"];
    SLLM_CHECK(messages.is_array(), str(where, ": \"messages\" must be a list"), "see `sllm reward score --help`");
    size_t split = messages.size();
    while (split > 0 && messages[split - 1].is_object() && messages[split - 1].value("role", "") == "assistant")
      --split;
    SLLM_CHECK(split < messages.size(), str(where, ": the conversation does not end with an assistant turn"),
               "the response to score is the conversation's last assistant message(s)");
    const json prompt(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(split));
    const json response(messages.begin() + static_cast<std::ptrdiff_t>(split), messages.end());
    as_pair = {{"prompt", prompt}, {"chosen", response}, {"rejected", response}};
  } else {
    const char* key = obj.contains("completion") ? "completion" : "response";
    SLLM_CHECK(obj.contains("prompt") && obj.contains(key),
               str(where, ": the line has neither \"chosen\"/\"rejected\", \"prompt\"/\"completion\" nor \"messages\""),
               "see `sllm reward score --help` for the line formats");
    as_pair = {{"prompt", obj["prompt"]}, {"chosen", obj[key]}, {"rejected", obj[key]}};
  }
  data::PreferencePair p = data::render_preference_line(as_pair.dump(), where, tok, chat_template);
  p.prompt.insert(p.prompt.end(), p.chosen.begin(), p.chosen.end());
  return p.prompt;
}

int run_reward_score(const std::vector<std::string>& argv) {
  Args args("reward score", argv,
            {{"--model", FlagSpec::Value, "reward model directory or `sllm reward train` run directory (required)"},
             {"--data", FlagSpec::Value, "JSONL: {\"prompt\", \"chosen\", \"rejected\"} pairs → {\"chosen\": x, \"rejected\": y}; "
                                         "{\"prompt\", \"completion\"} or {\"messages\": [...]} → {\"reward\": x} (required)"},
             {"--template", FlagSpec::Value, "chatml or none, as the model was trained [chatml]"},
             {"--batch", FlagSpec::Value, "sequences per forward pass [16]"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"}});
  apply_threads_flag(args);
  rl::RewardModel rm = rl::RewardModel::load(args.required("--model"));
  SLLM_CHECK(!rm.tokenizer_path().empty(), str("sllm reward score: the reward model has no tokenizer.json"),
             "copy the tokenizer it was trained with into its directory");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(rm.tokenizer_path());
  const data::SftTemplate chat_template = data::parse_sft_template(args.get("--template", "chatml"));
  const int64_t batch = args.get_int("--batch", 16);
  SLLM_CHECK(batch > 0, str("sllm reward score: --batch must be > 0, got ", batch), "pass a positive integer");
  const std::string path = args.required("--data");
  std::ifstream in(path, std::ios::binary);
  SLLM_CHECK(in.good(), str("cannot open '", path, "'"), "check the --data path");

  // Every line is read and checked before anything is printed: a bad line fails the command
  // with no partial output.
  std::vector<std::vector<int32_t>> seqs;
  std::vector<bool> is_pair;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string where = str(path, ":", number);
    const json obj = json::parse(line, nullptr, false);
    SLLM_CHECK(obj.is_object(), str(where, ": not a JSON object"), "each line is one JSON object");
    const bool pair = obj.contains("chosen") || obj.contains("rejected");
    if (pair) {
      data::PreferencePair p = data::render_preference_line(line, where, tok, chat_template);
      for (const auto* response : {&p.chosen, &p.rejected}) {
        std::vector<int32_t> s = p.prompt;
        s.insert(s.end(), response->begin(), response->end());
        seqs.push_back(std::move(s));
      }
    } else {
      seqs.push_back(render_single(obj, where, tok, chat_template));
    }
    is_pair.push_back(pair);
    const int64_t n_ctx = rm.trunk().config().n_ctx;
    for (size_t i = seqs.size() - (pair ? 2 : 1); i < seqs.size(); ++i)
      SLLM_CHECK(static_cast<int64_t>(seqs[i].size()) <= n_ctx,
                 str(where, ": prompt + response is ", seqs[i].size(), " tokens, more than the model's context of ",
                     n_ctx),
                 "shorten the line; the reward model reads the whole sequence");
  }
  SLLM_CHECK(!seqs.empty(), str("'", path, "' has no lines to score"), "give one JSON object per line");
  const std::vector<float> scores = rm.score(seqs, batch);
  size_t k = 0;
  for (bool pair : is_pair) {
    const json out = pair ? json{{"chosen", scores[k]}, {"rejected", scores[k + 1]}} : json{{"reward", scores[k]}};
    k += pair ? 2 : 1;
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

CommandRegistrar train_reg("reward train", "train a reward model (Bradley-Terry) on preference pairs",
                           run_reward_train);
CommandRegistrar score_reg("reward score", "score JSONL lines with a reward model (JSON lines out)", run_reward_score);

}  // namespace
}  // namespace sllm::cli

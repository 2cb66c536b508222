// `sllm data rlhf-story`: writes the demo's verifiable prompts and preference pairs
// (src/data/rlhf_story.h) for `sllm verify`, `sllm ppo`/`grpo` (prompts) and `sllm reward`/`dpo` (pairs).
#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "data/rlhf_story.h"

namespace sllm::cli {

static int run_data_rlhf_story(const std::vector<std::string>& argv) {
  Args args("data rlhf-story", argv,
            {{"--out", FlagSpec::Value,
              "output directory; receives prompts.train.jsonl, prompts.test.jsonl, pairs.train.jsonl, pairs.val.jsonl and README"},
             {"--train", FlagSpec::Value, "training stories: one prompt and one pair each (default 2000)"},
             {"--val", FlagSpec::Value, "held-out validation pairs (default 200)"},
             {"--test", FlagSpec::Value, "held-out test prompts (default 200)"},
             {"--seed", FlagSpec::Value, "random seed; same seed and sizes, same bytes (default 1337)"}});
  const std::string out = args.required("--out");
  const int64_t train = args.get_int("--train", 2000), val = args.get_int("--val", 200), test = args.get_int("--test", 200);
  const int64_t seed = args.get_int("--seed", 1337);
  SLLM_CHECK(train > 0 && val >= 0 && test > 0 && train + val + test <= 1000000,
             str("sllm data rlhf-story: sizes must be --train > 0, --val >= 0, --test > 0 and at most 1000000 in all; got ",
                 train, ", ", val, ", ", test),
             "e.g. --train 2000 --val 200 --test 200");
  SLLM_CHECK(seed >= 0, str("sllm data rlhf-story: --seed must be non-negative, got ", seed), "e.g. --seed 1337");
  const data::RlhfStorySplits splits = data::make_rlhf_story(train, val, test, static_cast<uint64_t>(seed));
  data::write_rlhf_story(out, splits, static_cast<uint64_t>(seed));
  std::fprintf(stderr, "wrote %s: %lld train prompts and pairs, %lld val pairs, %lld test prompts, distinct stories (seed %lld)\n",
               out.c_str(), static_cast<long long>(train), static_cast<long long>(val), static_cast<long long>(test),
               static_cast<long long>(seed));
  return 0;
}

static CommandRegistrar registrar("data rlhf-story",
                                  "write the RLHF demo's verifiable prompts (uses-word) and preference pairs (JSONL)",
                                  run_data_rlhf_story);

}  // namespace sllm::cli

// `sllm data story-qa`: writes the story-QA instruction set (src/data/story_qa.h) as chat JSONL.
#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "data/story_qa.h"

namespace sllm::cli {

static int run_data_story_qa(const std::vector<std::string>& argv) {
  Args args("data story-qa", argv,
            {{"--out", FlagSpec::Value, "output directory; receives train.jsonl, val.jsonl, test.jsonl and README"},
             {"--train", FlagSpec::Value, "training examples (default 4000)"},
             {"--val", FlagSpec::Value, "validation examples (default 200)"},
             {"--test", FlagSpec::Value, "held-out test examples (default 300)"},
             {"--seed", FlagSpec::Value, "random seed; same seed and sizes, same bytes (default 1337)"},
             {"--children", FlagSpec::Value, "children per story: 1 (each answer a lookup) or 2 (a distractor child) [1]"}});
  const std::string out = args.required("--out");
  const int64_t train = args.get_int("--train", 4000), val = args.get_int("--val", 200), test = args.get_int("--test", 300);
  const int64_t seed = args.get_int("--seed", 1337);
  const int64_t children = args.get_int("--children", 1);
  SLLM_CHECK(children == 1 || children == 2, str("sllm data story-qa: --children must be 1 or 2, got ", children),
             "1: one child per story; 2: a second child as a distractor");
  SLLM_CHECK(train > 0 && val >= 0 && test > 0 && train + val + test <= 1000000,
             str("sllm data story-qa: sizes must be --train > 0, --val >= 0, --test > 0 and at most 1000000 in all; got ",
                 train, ", ", val, ", ", test),
             "e.g. --train 4000 --val 200 --test 300");
  SLLM_CHECK(seed >= 0, str("sllm data story-qa: --seed must be non-negative, got ", seed), "e.g. --seed 1337");
  const data::StoryQaSplits splits = data::make_story_qa(train, val, test, static_cast<uint64_t>(seed), static_cast<int>(children));
  data::write_story_qa(out, splits, static_cast<uint64_t>(seed), static_cast<int>(children));
  std::fprintf(stderr, "wrote %s/{train,val,test}.jsonl: %lld / %lld / %lld examples, distinct stories (seed %lld)\n",
               out.c_str(), static_cast<long long>(train), static_cast<long long>(val), static_cast<long long>(test),
               static_cast<long long>(seed));
  return 0;
}

static CommandRegistrar registrar("data story-qa", "write the story-QA instruction set (chat JSONL, answers checkable as strings)",
                                  run_data_story_qa);

}  // namespace sllm::cli

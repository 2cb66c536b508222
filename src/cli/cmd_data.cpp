// `sllm data synth`: writes the built-in synthetic story corpus (src/data/story_grammar.cpp).
#include <cmath>
#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "data/synth_corpus.h"

namespace sllm::cli {

static int run_data_synth(const std::vector<std::string>& argv) {
  Args args("data synth", argv,
            {{"--out", FlagSpec::Value, "output directory; receives train.txt and README"},
             {"--size-mb", FlagSpec::Value, "approximate corpus size in MiB (default 8)"},
             {"--seed", FlagSpec::Value, "random seed; same seed, same bytes (default 1337)"}});
  const std::string out = args.required("--out");
  const double size_mb = args.get_double("--size-mb", 8.0);
  const int64_t seed = args.get_int("--seed", 1337);
  SLLM_CHECK(size_mb > 0 && size_mb <= 64 * 1024, str("sllm data synth: --size-mb must be in (0, 65536], got ", size_mb),
             "e.g. --size-mb 8 gives a corpus a small model learns from in minutes");
  SLLM_CHECK(seed >= 0, str("sllm data synth: --seed must be non-negative, got ", seed), "e.g. --seed 1337");
  const auto bytes = static_cast<int64_t>(std::llround(size_mb * (1 << 20)));
  const data::SynthSummary summary = data::write_synth_corpus(out, bytes, static_cast<uint64_t>(seed));
  std::fprintf(stderr, "wrote %s/train.txt: %lld stories, %.2f MiB (seed %lld)\n", out.c_str(),
               static_cast<long long>(summary.stories), static_cast<double>(summary.bytes) / (1 << 20),
               static_cast<long long>(seed));
  return 0;
}

static CommandRegistrar registrar("data synth", "write the built-in synthetic story corpus (train.txt)", run_data_synth);

}  // namespace sllm::cli

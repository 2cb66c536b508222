// `sllm chat`: talk to a fine-tuned model on its chat template (src/infer/chat_session.h).
// Interactive: one user turn per line of stdin, the reply streamed to stdout followed by a
// newline; "/reset" forgets the conversation, "/exit" or end of input quits. stdin need not
// be a terminal (a pipe or a file works the same; the "> " prompt goes to stderr only on a
// terminal). --prompt TEXT: one turn, print the reply, exit.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "cli/inference_flags.h"
#include "core/args.h"
#include "core/error.h"
#include "data/sft_dataset.h"
#include "infer/chat_session.h"

namespace sllm::cli {
namespace {

void print_text(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// One turn: stream the reply, end it with a newline, note dropped history on stderr.
void chat_turn(infer::ChatSession& chat, const std::string& user, int64_t n_ctx) {
  const infer::ChatTurn turn = chat.send(user, print_text);
  print_text("\n");
  if (turn.dropped_turns > 0)
    std::fprintf(stderr, "[dropped the oldest %lld exchange(s) to fit the context of %lld tokens]\n",
                 static_cast<long long>(turn.dropped_turns), static_cast<long long>(n_ctx));
  if (turn.generation.reason != infer::StopReason::StopToken)
    std::fprintf(stderr, "[the reply stopped at %s before the end-of-turn token]\n",
                 infer::stop_reason_name(turn.generation.reason));
}

int run_chat(const std::vector<std::string>& argv) {
  Args args("chat", argv,
            with_flags({{"--system", FlagSpec::Value, "system message, kept when old turns are dropped [none]"},
                        {"--prompt", FlagSpec::Value, "one-shot: send this message, print the reply, exit (no REPL)"},
                        {"--template", FlagSpec::Value,
                         "chatml, as `sllm sft` renders chats; or none (each line a bare prompt, no history) [chatml]"}},
                       model_flags(), sampling_flags("seed of the sampler; turn k draws from seed + k [0]")));
  infer::ChatOptions options;
  options.chat_template = data::parse_sft_template(args.get("--template", "chatml"));
  options.system = args.get("--system", "");
  const SamplingFlags flags = read_sampling_flags(args);
  options.sampling = flags.sampling;
  options.max_new_tokens = flags.max_new_tokens;
  const infer::InferenceSpec spec = read_model_flags(args, /*with_tokenizer=*/true);
  infer::InferenceModel m = infer::load_inference_model(spec);
  infer::ChatSession chat(m, options);
  const int64_t n_ctx = m.model->config().n_ctx;

  if (args.has("--prompt")) {
    chat_turn(chat, args.get("--prompt", ""), n_ctx);
    return 0;
  }
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive) std::fprintf(stderr, "[chat: one message per line; /reset clears the history, /exit quits]\n");
  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a file with CRLF line ends
    if (line == "/exit") break;
    if (line == "/reset") {
      chat.reset();
      std::fprintf(stderr, "[history cleared]\n");
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      chat_turn(chat, line, n_ctx);
    } catch (const Error& e) {
      // A message too long for the context: say so and keep the conversation going.
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  return 0;
}

CommandRegistrar reg("chat", "multi-turn chat on the ChatML template (streamed; --adapter for LoRA, --prompt for one shot)",
                     run_chat);

}  // namespace
}  // namespace sllm::cli

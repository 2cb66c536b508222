// `sllm convert FILE.gguf --out DIR`: a GGUF model (io/gguf_model.h) as a Hugging Face model
// directory that every sllm command and `transformers` load:
//   config.json + model.safetensors (f32, dequantized, Q/K rows un-permuted: io::save_model)
//   tokenizer.json        the GGUF vocabulary (tokenizer/gguf_tokenizer.h) as Tokenizer::save writes it
//   tokenizer_config.json the special tokens, add_bos_token and chat_template, under
//                         transformers' key names
// The directory appears whole or not at all (AtomicDirectory).
#include <omp.h>

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/gguf_model.h"
#include "io/model_files.h"
#include "tokenizer/gguf_tokenizer.h"

namespace sllm::cli {
namespace {

namespace fs = std::filesystem;

// tokenizer_config.json as transformers reads it (tokenization_utils_base.py: bos_token,
// eos_token, unk_token, pad_token, add_bos_token, add_eos_token, chat_template).
std::string tokenizer_config_text(const tokenizer::GgufTokenizer& g) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  auto token = [&](const char* key, const std::optional<int32_t>& id) {
    if (id) j[key] = g.tokenizer.token_bytes(*id);
  };
  token("bos_token", g.bos_id);
  token("eos_token", g.eos_id);
  token("unk_token", g.unk_id);
  token("pad_token", g.pad_id);
  j["add_bos_token"] = g.add_bos;
  j["add_eos_token"] = g.add_eos;
  if (!g.chat_template.empty()) j["chat_template"] = g.chat_template;
  return j.dump(2) + "\n";
}

int run_convert(const std::vector<std::string>& argv_in) {
  // The input file may come first, without a flag: `sllm convert FILE.gguf --out DIR`.
  std::vector<std::string> argv = argv_in;
  std::string input;
  if (!argv.empty() && argv[0].rfind("-", 0) != 0) {
    input = argv[0];
    argv.erase(argv.begin());
  }
  Args args("convert", argv,
            {{"--gguf", FlagSpec::Value, "the GGUF file to convert (or give it first, without a flag)"},
             {"--out", FlagSpec::Value, "new directory for the model; must not exist or be empty (required)"},
             {"--threads", FlagSpec::Value, "CPU threads for dequantization [all cores]"}});
  if (args.has("--gguf")) {
    SLLM_CHECK(input.empty(), "sllm convert: the GGUF file is given twice", args.usage());
    input = args.get("--gguf", "");
  }
  SLLM_CHECK(!input.empty(), "sllm convert: no GGUF file given", "sllm convert FILE.gguf --out DIR");
  SLLM_CHECK(io::is_gguf_file(input), str("sllm convert: '", input, "' is not a .gguf file"),
             "pass a GGUF model file, e.g. data/models/SmolLM2-135M-Instruct.Q4_1.gguf (`make smollm2`)");
  const std::string out = args.required("--out");
  apply_threads_flag(args);
  check_new_output_dir(out, "sllm convert");

  // Everything is read and checked before anything is written.
  const io::GgufFile file = io::GgufFile::open(input);
  const std::unique_ptr<nn::Transformer> model = io::load_gguf_model(file);
  const tokenizer::GgufTokenizer tok = tokenizer::load_gguf_tokenizer(file);
  SLLM_CHECK(tok.tokenizer.vocab_size() <= model->config().vocab_size,
             str("sllm convert: the tokenizer of '", input, "' has ", tok.tokenizer.vocab_size(), " tokens, the model ",
                 model->config().vocab_size),
             "the file's tokenizer and weights do not belong together");

  const fs::path parent = fs::absolute(out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  AtomicDirectory dir(out);  // destroyed without commit(): the temporary directory goes
  io::save_model(*model, dir.temp_path());
  tok.tokenizer.save(dir.temp_path());
  write_file_atomic((fs::path(dir.temp_path()) / "tokenizer_config.json").string(), tokenizer_config_text(tok));
  dir.commit();
  std::fprintf(stderr, "converted %s (%lld layers, vocab %lld, pre-tokenizer %s) -> %s (config.json, model.safetensors, "
               "tokenizer.json, tokenizer_config.json)\n",
               input.c_str(), static_cast<long long>(model->config().n_layer), static_cast<long long>(model->config().vocab_size),
               tok.pre.c_str(), out.c_str());
  return 0;
}

CommandRegistrar reg("convert", "a GGUF model file as a Hugging Face model directory (config.json, model.safetensors, tokenizer.json)",
                     run_convert);

}  // namespace
}  // namespace sllm::cli

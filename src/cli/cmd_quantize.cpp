// `sllm quantize --model DIR --out DIR [--nf4|--fp4] [--double-quant|--no-double-quant] [--blocksize 64]`:
// the trunk's Linears in 4 bits (QLoRA's NF4, or FP4) with blockwise absmax scales, written
// in the Hugging Face bitsandbytes layout (src/quant/bnb_files.h) that transformers loads and
// every sllm command (score, generate, chat, eval, sft --method qlora) reads. Embeddings,
// norms, biases and the LM head stay f32, as transformers leaves them.
//
// Double quantization (the absmax values themselves in 8 bits, QLoRA section 3) is on by
// default, as in `sllm sft --method qlora`; --no-double-quant keeps fp32 absmax values.
// A weight whose size is not a multiple of the blocksize ends in a short block with its own
// absmax, as bitsandbytes quantizes it: nothing is padded or refused.
// The directory appears whole or not at all (AtomicDirectory).
#include <omp.h>

#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "infer/model_path.h"
#include "io/gguf_model.h"
#include "quant/bnb_files.h"
#include "quant/quantize_model.h"
#include "quant/quantized_weight.h"
#include "tokenizer/tokenizer.h"

namespace sllm::cli {
namespace {

namespace fs = std::filesystem;

// Storage of the quantized Linears, split the way the QLoRA paper counts bits per parameter
// (codes + block scales + nested scales and offset) and the code tables each tensor carries
// besides (16 + 256 floats, the same in every tensor: bitsandbytes stores a copy per weight).
struct BitsReport {
  int64_t linears = 0, params = 0, per_param_bytes = 0, table_bytes = 0;
};

BitsReport bits_report(nn::Transformer& model) {
  BitsReport r;
  for (nn::Linear* linear : model.linears()) {
    if (!linear->is_packed()) continue;
    const auto* w = dynamic_cast<const quant::QuantizedWeight*>(linear->packed_weight().get());
    SLLM_ASSERT(w != nullptr);
    const quant::QuantizedTensor& q = w->tensor();
    const int64_t tables = int64_t(q.quant_map.nbytes() + (q.nested ? q.nested_quant_map.nbytes() : 0));
    r.linears += 1;
    r.params += q.numel();
    r.per_param_bytes += q.nbytes() - tables;
    r.table_bytes += tables;
  }
  return r;
}

double mib(double bytes) { return bytes / double(1 << 20); }

int run_quantize(const std::vector<std::string>& argv) {
  Args args("quantize", argv,
            {{"--model", FlagSpec::Value, "model directory, run directory or .gguf file to quantize (required)"},
             {"--out", FlagSpec::Value, "new directory for the 4-bit model; must not exist or be empty (required)"},
             {"--nf4", FlagSpec::Switch, "4-bit NormalFloat, QLoRA's type [the default]"},
             {"--fp4", FlagSpec::Switch, "bitsandbytes' 4-bit float (1 sign, 2 exponent, 1 mantissa bits)"},
             {"--double-quant", FlagSpec::Switch, "quantize the absmax values to 8 bits, blocks of 256 [the default]"},
             {"--no-double-quant", FlagSpec::Switch, "keep the absmax values in fp32 (4.5 bits per parameter at 64)"},
             {"--blocksize", FlagSpec::Value,
              "weights per absmax, a power of two in [32, 4096] [64]; a weight whose size is not a multiple of "
              "it ends in a short block, as bitsandbytes quantizes it"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"}});
  SLLM_CHECK(!(args.has("--nf4") && args.has("--fp4")), "sllm quantize: --nf4 and --fp4 both given",
             "pick one 4-bit type: --nf4 (QLoRA's, the default) or --fp4");
  SLLM_CHECK(!(args.has("--double-quant") && args.has("--no-double-quant")),
             "sllm quantize: --double-quant and --no-double-quant both given",
             "double quantization is on by default; pass --no-double-quant alone to turn it off");
  quant::QuantOptions options;
  options.type = args.has("--fp4") ? quant::QuantType::FP4 : quant::QuantType::NF4;
  options.double_quant = !args.has("--no-double-quant");
  options.blocksize = args.get_int("--blocksize", 64);
  quant::check_blocksize(options.blocksize, "sllm quantize --blocksize");
  const std::string model_arg = args.required("--model");
  const std::string out = args.required("--out");
  apply_threads_flag(args);
  check_new_output_dir(out, "sllm quantize");

  // Everything is read and checked before anything is written.
  const std::string dir = infer::resolve_model_dir(model_arg);
  const bool gguf = io::is_gguf_file(dir);
  SLLM_CHECK(gguf || !quant::is_quantized_dir(dir), str("sllm quantize: '", dir, "' is already quantized"),
             "pass the unquantized model: 4-bit weights cannot be quantized again without compounding the error "
             "(score, generate, chat and sft --method qlora load the quantized directory as it is)");
  std::unique_ptr<nn::Transformer> model = quant::load_model(dir);
  const quant::QuantizeReport report = quant::quantize_model(*model, options);
  const BitsReport bits = bits_report(*model);
  const fs::path tokenizer = fs::path(dir) / "tokenizer.json", tokenizer_config = fs::path(dir) / "tokenizer_config.json";

  const fs::path parent = fs::absolute(out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  AtomicDirectory staged(out);  // destroyed without commit(): the temporary directory goes
  quant::save_quantized_model(*model, staged.temp_path());
  if (gguf) {
    tokenizer::Tokenizer::load(dir).save(staged.temp_path());
  } else {
    for (const fs::path& f : {tokenizer, tokenizer_config})
      if (fs::is_regular_file(f))
        write_file_atomic((fs::path(staged.temp_path()) / f.filename()).string(), read_file(f.string()));
  }
  staged.commit();

  const double dense_bytes = 4.0 * double(report.params);
  std::fprintf(stderr, "quantized %lld Linears (%.2fM weights) of %s to %s%s, blocksize %lld -> %s\n",
               static_cast<long long>(report.linears), double(report.params) / 1e6, dir.c_str(),
               quant::quant_type_name(options.type).c_str(), options.double_quant ? " + double quantization" : "",
               static_cast<long long>(options.blocksize), out.c_str());
  std::printf("bits per parameter: %.3f (codes and block scales; %.3f with each tensor's %s code tables)\n",
              8.0 * double(bits.per_param_bytes) / double(bits.params),
              8.0 * double(bits.per_param_bytes + bits.table_bytes) / double(bits.params),
              options.double_quant ? "16 + 256 float" : "16-float");
  std::printf("quantized Linears: %.2f MiB in f32 -> %.2f MiB (%.3fx); model.safetensors: %.2f MiB\n", mib(dense_bytes),
              mib(double(report.bytes)), double(report.bytes) / dense_bytes,
              mib(double(fs::file_size(fs::path(out) / "model.safetensors"))));
  return 0;
}

CommandRegistrar reg("quantize",
                     "a model's Linears in 4 bits (NF4/FP4, double-quantized scales), in bitsandbytes' file layout",
                     run_quantize);

}  // namespace
}  // namespace sllm::cli

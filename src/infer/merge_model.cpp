#include "infer/merge_model.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/gguf_model.h"
#include "io/model_files.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {

namespace fs = std::filesystem;

InferenceModel merge_in_memory(const MergeOptions& o) {
  SLLM_CHECK(!o.adapter.empty(), "sllm merge: no --adapter given",
             "pass the adapter directory (or the `sllm sft --method lora` run) to merge");
  InferenceSpec spec;
  spec.model = o.model;
  spec.adapter = o.adapter;
  InferenceModel m = load_inference_model(spec);  // fp32 on the CPU: the merge is exact there
  m.lora->merge();
  return m;
}

InferenceModel merge_to_directory(const MergeOptions& o) {
  SLLM_CHECK(!o.out.empty(), "sllm merge: no --out given", "pass --out DIR, a new directory for the merged model");
  check_new_output_dir(o.out, "sllm merge");

  InferenceModel m = merge_in_memory(o);
  // The tokenizer to ship: the base's, else the adapter's (an sft LoRA checkpoint holds one).
  fs::path tokenizer = fs::path(m.dir) / "tokenizer.json";
  if (!fs::is_regular_file(tokenizer)) tokenizer = fs::path(m.adapter_dir) / "tokenizer.json";

  const fs::path parent = fs::absolute(o.out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  AtomicDirectory dir(o.out);  // destroyed without commit(): the temporary directory goes
  io::save_model(*m.model, dir.temp_path());
  if (io::is_gguf_file(m.dir))  // a GGUF base: its tokenizer, written as tokenizer.json
    tokenizer::Tokenizer::load(m.dir).save(dir.temp_path());
  else if (fs::is_regular_file(tokenizer))
    write_file_atomic((fs::path(dir.temp_path()) / "tokenizer.json").string(), read_file(tokenizer.string()));
  dir.commit();
  return m;
}

}  // namespace sllm::infer

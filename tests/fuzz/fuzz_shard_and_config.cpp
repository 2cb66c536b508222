// libFuzzer target: arbitrary bytes as a token shard (data/token_shard.h) or as a model
// config.json (nn/config.h), chosen by the first byte. Malformed input must be an
// sllm::Error, never a crash or undefined behaviour; an accepted shard must be readable end
// to end, an accepted config must validate and survive a JSON round trip.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/token_shard.h"
#include "nn/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (data[0] % 2 == 0) {
      static const std::string path = "/tmp/sllm_fuzz_shard." + std::to_string(getpid()) + ".bin";
      std::ofstream(path, std::ios::binary | std::ios::trunc).write(body.data(), static_cast<std::streamsize>(body.size()));
      const sllm::data::TokenShard shard = sllm::data::TokenShard::open(path);
      int64_t acc = 0;
      for (int64_t i = 0; i < shard.size(); ++i) acc += shard[i];
      if (acc < 0) std::abort();  // ids are unsigned on disk
    } else {
      const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return 0;
      const sllm::nn::ModelConfig c = sllm::nn::config_from_json(j, "fuzz");
      const sllm::nn::ModelConfig again = sllm::nn::config_from_json(sllm::nn::config_to_json(c), "round trip");
      if (again.num_parameters() != c.num_parameters()) std::abort();
    }
  } catch (const sllm::Error&) {
  }
  return 0;
}

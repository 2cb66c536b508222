#include "lora/lora_config.h"

#include <cmath>
#include <regex>
#include <set>

#include "core/error.h"

namespace sllm::lora {

std::vector<std::string> parse_targets(const std::string& comma_list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : comma_list + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

void check_config(const LoraConfig& cfg) {
  SLLM_CHECK(cfg.r > 0, str("LoRA rank r = ", cfg.r), "r must be a positive integer (typical: 8, 16, 64)");
  SLLM_CHECK(cfg.lora_alpha > 0 && std::isfinite(cfg.lora_alpha), str("LoRA lora_alpha = ", cfg.lora_alpha),
             "lora_alpha must be a positive number (typical: r or 2·r)");
  SLLM_CHECK(cfg.lora_dropout >= 0 && cfg.lora_dropout < 1, str("LoRA lora_dropout = ", cfg.lora_dropout),
             "lora_dropout is a probability in [0, 1)");
  SLLM_CHECK(!cfg.target_modules.empty() || !cfg.target_regex.empty(), "LoRA with no target modules",
             "name the Linears to adapt (e.g. q_proj,v_proj) or use all-linear");
}

float lora_scale(const LoraConfig& cfg) {
  check_config(cfg);
  // Hu et al. 2021, section 4.1: ΔW x is scaled by α/r. Kalajdzievski 2023 ("A Rank
  // Stabilization Scaling Factor for Fine-Tuning with LoRA", Theorem 3.2): α/√r keeps the
  // adapter's learning stable as r grows.
  const double r = static_cast<double>(cfg.r);
  return static_cast<float>(cfg.lora_alpha / (cfg.use_rslora ? std::sqrt(r) : r));
}

bool match_target(const std::string& path, const std::string& target) {
  if (path == target) return true;
  return path.size() > target.size() && path.compare(path.size() - target.size(), target.size(), target) == 0 &&
         path[path.size() - target.size() - 1] == '.';
}

std::vector<std::string> module_names(const std::vector<nn::Linear*>& linears) {
  std::set<std::string> names;
  for (const nn::Linear* l : linears) names.insert(l->path().substr(l->path().rfind('.') + 1));
  return {names.begin(), names.end()};
}

static std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::vector<nn::Linear*> select_targets(nn::Transformer& model, const LoraConfig& cfg) {
  check_config(cfg);
  const std::vector<nn::Linear*> all = model.linears();
  const std::string valid = joined(module_names(all));
  std::vector<nn::Linear*> chosen;
  if (!cfg.target_regex.empty()) {
    const std::regex re(cfg.target_regex);
    for (nn::Linear* l : all)
      if (std::regex_match(l->path(), re)) chosen.push_back(l);
    SLLM_CHECK(!chosen.empty(), str("the LoRA target regex '", cfg.target_regex, "' matches no Linear of the model"),
               str("it must match a whole module path such as '", all.front()->path(), "'; module names: ", valid));
    return chosen;
  }
  const bool all_linear = cfg.target_modules.size() == 1 && cfg.target_modules[0] == "all-linear";
  if (all_linear) return all;
  for (const std::string& t : cfg.target_modules) {
    SLLM_CHECK(t != "all-linear", "'all-linear' mixed with other LoRA target names",
               "use all-linear alone, or list the module names");
    bool any = false;
    for (nn::Linear* l : all) any = any || match_target(l->path(), t);
    SLLM_CHECK(any, str("the LoRA target '", t, "' matches no Linear of this ", model.config().family_name(),
                        " model"),
               str("valid names: ", valid, ", or all-linear"));
  }
  for (nn::Linear* l : all)
    for (const std::string& t : cfg.target_modules)
      if (match_target(l->path(), t)) {
        chosen.push_back(l);
        break;
      }
  return chosen;
}

}  // namespace sllm::lora

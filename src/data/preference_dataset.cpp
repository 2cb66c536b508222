#include "data/preference_dataset.h"

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace sllm::data {

namespace {

using nlohmann::json;

const char* const kFormatsHint =
    "each line must be a JSON object: {\"prompt\": \"...\", \"chosen\": \"...\", \"rejected\": \"...\"}, the same "
    "with lists of {\"role\", \"content\"} messages, or {\"chosen\": [messages], \"rejected\": [messages]} whose "
    "shared first messages are the prompt";

struct Response {
  std::vector<int32_t> prompt, response;
};

// The trained span of an SFT rendering is the response: everything before its first
// labelled token is the prompt; the template's unlabelled tail (chatml's "\n" after
// <|im_end|>) is dropped, so the response ends with the end-of-turn token.
Response split_at_labels(const std::vector<int32_t>& ids, const std::vector<uint8_t>& trained, size_t from,
                         const std::string& where, const char* key) {
  size_t first = from;
  while (first < ids.size() && !trained[first]) ++first;
  size_t end = ids.size();
  while (end > first && !trained[end - 1]) --end;
  SLLM_CHECK(first < end, str(where, ": \"", key, "\" renders to no response token"),
             "give the response some content (template none needs <|endoftext|> in the tokenizer for an empty one)");
  return Response{std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(first)),
                  std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(first),
                                       ids.begin() + static_cast<std::ptrdiff_t>(end))};
}

// Standard form: the SFT prompt/completion rendering of either template (sft_dataset.h).
Response render_text(const std::string& prompt, const std::string& answer, const std::string& where, const char* key,
                     const tokenizer::Tokenizer& tok, SftTemplate chat_template) {
  const SftRendered r =
      render_sft_line(json{{"prompt", prompt}, {"completion", answer}}.dump(), where, tok, chat_template);
  std::vector<uint8_t> trained(r.labels.size());
  for (size_t i = 0; i < r.labels.size(); ++i) trained[i] = r.labels[i] != kIgnoreIndex;
  return split_at_labels(r.ids, trained, 0, where, key);
}

std::vector<tokenizer::ChatMessage> parse_messages(const json& list, const std::string& where, const char* key) {
  SLLM_CHECK(list.is_array(), str(where, ": \"", key, "\" must be a list of messages here"), kFormatsHint);
  std::vector<tokenizer::ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string what = str(where, ": \"", key, "\" message ", i);
    SLLM_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                   m["content"].is_string(),
               str(what, " is not a {\"role\": \"...\", \"content\": \"...\"} object"), kFormatsHint);
    const std::string role = m["role"].get<std::string>();
    SLLM_CHECK(role == "system" || role == "user" || role == "assistant",
               str(what, " has unknown role \"", role, "\""), "roles are \"system\", \"user\" and \"assistant\"");
    out.push_back({role, m["content"].get<std::string>()});
  }
  return out;
}

// Conversational form: prompt turns then response turns through ChatML; the response is
// the assistant span after the prompt's rendering (its "<|im_start|>assistant\n" header is
// the prompt's generation prompt, as TRL's apply_chat_template renders it).
Response render_messages(const std::vector<tokenizer::ChatMessage>& prompt,
                         const std::vector<tokenizer::ChatMessage>& response, const std::string& where, const char* key,
                         const tokenizer::Tokenizer& tok) {
  SLLM_CHECK(!response.empty(), str(where, ": \"", key, "\" has no response message after the prompt"),
             "each of chosen and rejected needs at least one assistant message of its own");
  for (const auto& m : response)
    SLLM_CHECK(m.role == "assistant",
               str(where, ": \"", key, "\" has a \"", m.role, "\" message in its response; responses are assistant "
                   "turns"),
               "move the other turns into \"prompt\" (or into the messages both conversations share)");
  std::vector<tokenizer::ChatMessage> all = prompt;
  all.insert(all.end(), response.begin(), response.end());
  const tokenizer::ChatEncoding enc = tokenizer::render_chatml(tok, all);
  return split_at_labels(enc.ids, enc.assistant_mask, tokenizer::render_chatml(tok, prompt).ids.size(), where, key);
}

bool same_message(const tokenizer::ChatMessage& a, const tokenizer::ChatMessage& b) {
  return a.role == b.role && a.content == b.content;
}

const json& required(const json& obj, const char* key, const std::string& where) {
  SLLM_CHECK(obj.contains(key), str(where, ": the line has no \"", key, "\""), kFormatsHint);
  return obj[key];
}

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r\n") == std::string::npos; }

void fnv1a(uint64_t& h, const std::vector<int32_t>& v) {
  for (int32_t x : v) {
    auto u = static_cast<uint32_t>(x);
    for (int b = 0; b < 4; ++b, u >>= 8) h = (h ^ (u & 0xFFu)) * 0x100000001B3ull;
  }
  h = (h ^ 0xFFu) * 0x100000001B3ull;  // a separator, so [1,2][3] and [1][2,3] differ
}

}  // namespace

PreferencePair render_preference_line(const std::string& json_text, const std::string& where,
                                      const tokenizer::Tokenizer& tok, SftTemplate chat_template) {
  json obj;
  try {
    obj = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(str(where, ": not valid JSON (", e.what(), ")"), kFormatsHint);
  }
  SLLM_CHECK(obj.is_object(), str(where, ": the line is a JSON ", obj.type_name(), ", not an object"), kFormatsHint);
  const json& chosen = required(obj, "chosen", where);
  const json& rejected = required(obj, "rejected", where);
  SLLM_CHECK(chosen.type() == rejected.type() && (chosen.is_string() || chosen.is_array()),
             str(where, ": \"chosen\" and \"rejected\" must both be strings or both be lists of messages, got ",
                 chosen.type_name(), " and ", rejected.type_name()),
             kFormatsHint);
  Response c, r;
  if (chosen.is_string()) {
    const json& prompt = required(obj, "prompt", where);
    SLLM_CHECK(prompt.is_string(), str(where, ": \"prompt\" must be a string when the responses are strings"),
               kFormatsHint);
    SLLM_CHECK(!prompt.get<std::string>().empty(), str(where, ": the prompt is empty"),
               "give every pair the prompt both responses answer; a reward for an unprompted text is not a preference");
    c = render_text(prompt.get<std::string>(), chosen.get<std::string>(), where, "chosen", tok, chat_template);
    r = render_text(prompt.get<std::string>(), rejected.get<std::string>(), where, "rejected", tok, chat_template);
  } else {
    SLLM_CHECK(chat_template == SftTemplate::chatml,
               str(where, ": a conversation (lists of messages) cannot be rendered with template none"),
               "use --template chatml for chat data; none is for plain prompt/chosen/rejected strings");
    std::vector<tokenizer::ChatMessage> prompt, mc = parse_messages(chosen, where, "chosen"),
                                                mr = parse_messages(rejected, where, "rejected");
    if (obj.contains("prompt")) {
      prompt = parse_messages(obj["prompt"], where, "prompt");
      SLLM_CHECK(!prompt.empty(), str(where, ": the prompt is an empty list of messages"),
                 "give every pair the prompt both responses answer");
    } else {
      // Implicit prompt (TRL's extract_prompt): the longest run of messages both share.
      size_t k = 0;
      while (k < mc.size() && k < mr.size() && same_message(mc[k], mr[k])) ++k;
      SLLM_CHECK(k > 0, str(where, ": the chosen and rejected conversations share no first message, so the pair "
                               "has no prompt (empty prompt)"),
                 "start both conversations with the same prompt turns, or give them as \"prompt\"");
      prompt.assign(mc.begin(), mc.begin() + static_cast<std::ptrdiff_t>(k));
      mc.erase(mc.begin(), mc.begin() + static_cast<std::ptrdiff_t>(k));
      mr.erase(mr.begin(), mr.begin() + static_cast<std::ptrdiff_t>(k));
    }
    c = render_messages(prompt, mc, where, "chosen", tok);
    r = render_messages(prompt, mr, where, "rejected", tok);
  }
  SLLM_ASSERT(c.prompt == r.prompt);  // one prompt, rendered alike before either response
  return PreferencePair{std::move(c.prompt), std::move(c.response), std::move(r.response)};
}

PreferenceBatch make_preference_batch(const std::vector<const PreferencePair*>& pairs, int64_t T, int32_t pad_id) {
  const auto B = static_cast<int64_t>(pairs.size());
  SLLM_CHECK(B > 0 && T > 0, str("preference batch: needs pairs and T > 0, got ", B, " pairs, T=", T),
             "pass a positive --batch and --seq");
  PreferenceBatch batch;
  batch.pairs = B;
  batch.ids = Tensor::empty({2 * B, T}, DType::I32);
  batch.labels = Tensor::empty({2 * B, T}, DType::I32);
  batch.last.resize(static_cast<size_t>(2 * B));
  int32_t* ids = batch.ids.mutable_i32();        // (2B, T)
  int32_t* labels = batch.labels.mutable_i32();  // (2B, T)
  for (int64_t row = 0; row < 2 * B; ++row) {
    const PreferencePair& pair = *pairs[static_cast<size_t>(row % B)];
    const std::vector<int32_t>& response = row < B ? pair.chosen : pair.rejected;
    const auto P = static_cast<int64_t>(pair.prompt.size()), R = static_cast<int64_t>(response.size());
    SLLM_CHECK(R > 0 && P + R <= T,
               str("preference batch: a pair of ", P, " prompt and ", R, " response tokens does not fit T = ", T),
               "load the data with --seq at least as long as the batches (PreferenceOptions::seq_len)");
    int32_t* id_row = ids + row * T;       // (T)
    int32_t* label_row = labels + row * T;  // (T)
    std::copy(pair.prompt.begin(), pair.prompt.end(), id_row);
    std::copy(response.begin(), response.end(), id_row + P);
    std::fill(id_row + P + R, id_row + T, pad_id);
    // Next-token targets on the response only: position t predicts ids[t + 1].
    std::fill(label_row, label_row + T, kIgnoreIndex);
    for (int64_t t = P - 1; t < P + R - 1; ++t)
      if (t >= 0) label_row[t] = id_row[t + 1];
    batch.last[static_cast<size_t>(row)] = P + R - 1;
    batch.tokens += P + R;
  }
  return batch;
}

std::string describe(const PreferenceSummary& s) {
  std::string out = str("pairs ", s.pairs, ", truncated ", s.truncated, ", tokens ", s.tokens);
  if (s.equal > 0)
    out += str("; WARNING: skipped ", s.equal, " pair(s) whose chosen and rejected responses are the same tokens");
  if (s.dropped > 0)
    out += str("; WARNING: dropped ", s.dropped, " pair(s) that --truncate left with no response token or with "
                                                 "equal responses");
  return out;
}

PreferenceDataset PreferenceDataset::load(const std::string& path, const tokenizer::Tokenizer& tok,
                                          const PreferenceOptions& options) {
  return parse(read_data_file(path, "preference"), path, tok, options);
}

PreferenceDataset PreferenceDataset::parse(const std::string& text, const std::string& name,
                                           const tokenizer::Tokenizer& tok, const PreferenceOptions& options) {
  const int64_t T = options.seq_len;
  SLLM_CHECK(T > 0, str("preference data: sequence length must be positive, got ", T), "pass a positive --seq");
  SLLM_CHECK(options.chat_template != SftTemplate::chatml ||
                 (tok.special_id("<|im_start|>") && tok.special_id("<|im_end|>")),
             str("preference data '", name, "': template chatml needs the special tokens <|im_start|> and "
                 "<|im_end|>, which the tokenizer does not have"),
             "use a chat tokenizer, or --template none for prompt/chosen/rejected strings");
  PreferenceDataset data;
  data.options_ = options;
  data.name_ = name;
  int64_t nonblank = 0, overlong = 0, first_overlong_line = 0, first_overlong_tokens = 0;
  std::istringstream lines(text);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (blank(line)) continue;
    ++nonblank;
    PreferencePair pair = render_preference_line(line, str(name, ":", number), tok, options.chat_template);
    if (pair.chosen == pair.rejected) {
      ++data.summary_.equal;
      continue;
    }
    const auto P = static_cast<int64_t>(pair.prompt.size());
    const int64_t longest = P + static_cast<int64_t>(std::max(pair.chosen.size(), pair.rejected.size()));
    if (longest > T) {
      if (overlong++ == 0) first_overlong_line = number, first_overlong_tokens = longest;
      if (!options.truncate) continue;  // keep scanning, to report how many lines are too long
      // Cut each response to what is left of T after the prompt: the prompt is what both
      // rows are conditioned on, so it stays whole (a pair with no room left is dropped).
      const int64_t room = T - P;
      if (room <= 0) {
        ++data.summary_.dropped;
        continue;
      }
      for (auto* response : {&pair.chosen, &pair.rejected})
        if (static_cast<int64_t>(response->size()) > room) response->resize(static_cast<size_t>(room));
      if (pair.chosen == pair.rejected) {
        ++data.summary_.dropped;
        continue;
      }
      ++data.summary_.truncated;
    }
    data.summary_.tokens += 2 * P + static_cast<int64_t>(pair.chosen.size() + pair.rejected.size());
    for (const auto* ids : {&pair.prompt, &pair.chosen, &pair.rejected})
      for (int32_t id : *ids) data.max_id_ = std::max(data.max_id_, id);
    data.pairs_.push_back(std::move(pair));
    data.lines_.push_back(number);
  }
  SLLM_CHECK(nonblank > 0, str("preference data file '", name, "' has no pairs (it is empty or only blank lines)"),
             "give --data a JSONL file with one {\"prompt\", \"chosen\", \"rejected\"} object per line");
  SLLM_CHECK(options.truncate || overlong == 0,
             str(name, ":", first_overlong_line, ": prompt + response is ", first_overlong_tokens,
                 " tokens, more than --seq ", T, " allows; ", overlong, " pair(s) in the file are that long"),
             str("raise --seq to at least ", first_overlong_tokens,
                 " (up to the model's context), or pass --truncate to cut the responses of such pairs"));
  SLLM_CHECK(!data.pairs_.empty(),
             str("preference data file '", name, "' has no usable pair: ", describe(data.summary_)),
             "give pairs whose chosen and rejected responses differ (and fit --seq)");
  data.summary_.pairs = data.size();
  uint64_t h = 0xCBF29CE484222325ull;
  for (const auto& p : data.pairs_) fnv1a(h, p.prompt), fnv1a(h, p.chosen), fnv1a(h, p.rejected);
  data.fingerprint_ = h;
  return data;
}

}  // namespace sllm::data

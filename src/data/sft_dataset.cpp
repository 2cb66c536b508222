#include "data/sft_dataset.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace sllm::data {

namespace {

const char* const kFormatsHint =
    "each line must be a JSON object, either {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}, "
    "{\"role\": \"assistant\", \"content\": \"...\"}]} or {\"prompt\": \"...\", \"completion\": \"...\"}";

const nlohmann::json& string_field(const nlohmann::json& obj, const char* key, const std::string& where,
                                   const std::string& what) {
  SLLM_CHECK(obj.contains(key) && obj[key].is_string(), str(where, ": ", what, " has no string \"", key, "\""),
             kFormatsHint);
  return obj[key];
}

std::vector<tokenizer::ChatMessage> parse_messages(const nlohmann::json& messages, const std::string& where) {
  SLLM_CHECK(messages.is_array() && !messages.empty(), str(where, ": \"messages\" must be a non-empty array"),
             kFormatsHint);
  std::vector<tokenizer::ChatMessage> out;
  bool has_assistant = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string what = str("message ", i);
    SLLM_CHECK(m.is_object(), str(where, ": ", what, " is not a JSON object"), kFormatsHint);
    const std::string role = string_field(m, "role", where, what).get<std::string>();
    SLLM_CHECK(role == "system" || role == "user" || role == "assistant",
               str(where, ": ", what, " has unknown role \"", role, "\""),
               "roles are \"system\", \"user\" and \"assistant\"");
    has_assistant = has_assistant || role == "assistant";
    out.push_back({role, string_field(m, "content", where, what).get<std::string>()});
  }
  SLLM_CHECK(has_assistant,
             str(where, ": the conversation has no assistant turn, so nothing in it would be trained on"),
             "add an {\"role\": \"assistant\", \"content\": ...} message, or remove the line");
  return out;
}

SftRendered from_chat(const tokenizer::ChatEncoding& enc) {
  SftRendered r{enc.ids, std::vector<int32_t>(enc.ids.size())};
  for (size_t i = 0; i < enc.ids.size(); ++i) r.labels[i] = enc.assistant_mask[i] ? enc.ids[i] : kIgnoreIndex;
  return r;
}

// Template none: prompt (ignored), completion (labelled), then <|endoftext|> (labelled) if any.
SftRendered render_plain(const tokenizer::Tokenizer& tok, const std::string& prompt, const std::string& completion) {
  SftRendered r;
  r.ids = tok.encode(prompt);
  r.labels.assign(r.ids.size(), kIgnoreIndex);
  std::vector<int32_t> answer = tok.encode(completion);
  if (const auto eot = tok.special_id("<|endoftext|>")) answer.push_back(*eot);
  r.ids.insert(r.ids.end(), answer.begin(), answer.end());
  r.labels.insert(r.labels.end(), answer.begin(), answer.end());
  return r;
}

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r\n") == std::string::npos; }

void fnv1a(uint64_t& h, const std::vector<int32_t>& v) {
  for (int32_t x : v) {
    auto u = static_cast<uint32_t>(x);
    for (int b = 0; b < 4; ++b, u >>= 8) h = (h ^ (u & 0xFFu)) * 0x100000001B3ull;
  }
}

}  // namespace

SftTemplate parse_sft_template(const std::string& name) {
  if (name == "chatml") return SftTemplate::chatml;
  if (name == "none") return SftTemplate::none;
  fail(str("unknown chat template \"", name, "\""),
       "templates are chatml (<|im_start|>role ... <|im_end|>) and none (prompt then completion)");
}

const char* sft_template_name(SftTemplate t) { return t == SftTemplate::chatml ? "chatml" : "none"; }

std::string describe(const SftSummary& s) {
  return str("examples ", s.examples, ", truncated ", s.truncated, ", dropped ", s.dropped, ", tokens ", s.tokens,
             ", label tokens ", s.label_tokens);
}

SftRendered render_sft_line(const std::string& json_text, const std::string& where, const tokenizer::Tokenizer& tok,
                            SftTemplate chat_template) {
  nlohmann::json obj;
  try {
    obj = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail(str(where, ": not valid JSON (", e.what(), ")"), kFormatsHint);
  }
  SLLM_CHECK(obj.is_object(), str(where, ": the line is a JSON ", obj.type_name(), ", not an object"), kFormatsHint);
  const bool chat = obj.contains("messages");
  const bool completion = obj.contains("prompt") || obj.contains("completion");
  SLLM_CHECK(chat != completion,
             str(where, chat ? ": the line has both \"messages\" and \"prompt\"/\"completion\""
                             : ": the line has neither \"messages\" nor \"prompt\"/\"completion\""),
             kFormatsHint);
  if (chat) {
    SLLM_CHECK(chat_template == SftTemplate::chatml,
               str(where, ": a \"messages\" conversation cannot be rendered with template none"),
               "use --template chatml for chat data; none is for prompt/completion lines");
    return from_chat(tokenizer::render_chatml(tok, parse_messages(obj["messages"], where)));
  }
  const std::string prompt = string_field(obj, "prompt", where, "the line").get<std::string>();
  const std::string answer = string_field(obj, "completion", where, "the line").get<std::string>();
  if (chat_template == SftTemplate::none) return render_plain(tok, prompt, answer);
  return from_chat(tokenizer::render_chatml(tok, {{"user", prompt}, {"assistant", answer}}));
}

std::string read_data_file(const std::string& path, const char* kind) {
  std::ifstream in(path, std::ios::binary);
  SLLM_CHECK(in.good(), str("cannot open ", kind, " data file '", path, "'"), "check the --data path");
  std::stringstream text;
  text << in.rdbuf();
  SLLM_CHECK(!in.bad(), str("cannot read ", kind, " data file '", path, "'"), "check the file's permissions");
  return text.str();
}

SftDataset SftDataset::load(const std::string& path, const tokenizer::Tokenizer& tok, const SftOptions& options) {
  return parse(read_data_file(path, "SFT"), path, tok, options);
}

SftDataset SftDataset::parse(const std::string& text, const std::string& name, const tokenizer::Tokenizer& tok,
                             const SftOptions& options) {
  SLLM_CHECK(options.seq_len > 0, str("SFT data: sequence length must be positive, got ", options.seq_len),
             "pass a positive --seq");
  // Checked once up front, so the message names the data and the way out rather than line 1.
  SLLM_CHECK(options.chat_template != SftTemplate::chatml ||
                 (tok.special_id("<|im_start|>") && tok.special_id("<|im_end|>")),
             str("SFT data '", name, "': template chatml needs the special tokens <|im_start|> and <|im_end|>, "
                 "which the tokenizer does not have"),
             "use a chat tokenizer (`sllm tokenizer train` registers them), or --template none for "
             "prompt/completion data");
  SftDataset data;
  data.options_ = options;
  data.name_ = name;
  const auto T = options.seq_len;
  int64_t overlong = 0, first_overlong_line = 0, first_overlong_ids = 0, nonblank = 0;
  std::istringstream lines(text);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (blank(line)) continue;
    ++nonblank;
    const std::string where = str(name, ":", number);
    SftRendered r = render_sft_line(line, where, tok, options.chat_template);
    const auto n = static_cast<int64_t>(r.ids.size());
    SLLM_ASSERT(n == static_cast<int64_t>(r.labels.size()));
    if (n > T + 1) {
      if (overlong++ == 0) first_overlong_line = number, first_overlong_ids = n;
      if (!options.truncate) continue;  // keep scanning, to report how many lines are too long
      r.ids.resize(static_cast<size_t>(T + 1));
      r.labels.resize(static_cast<size_t>(T + 1));
    }
    SftExample ex;
    ex.line = number;
    ex.inputs.assign(r.ids.begin(), r.ids.end() - 1);
    ex.targets.assign(r.labels.begin() + 1, r.labels.end());
    int64_t labelled = 0;
    for (int32_t t : ex.targets) labelled += t != kIgnoreIndex;
    if (labelled == 0) {
      // Only truncation can get here: a rendered line always labels its end-of-turn token.
      SLLM_CHECK(n > T + 1, str(name, ":", number, ": the example has no token to train on"),
                 "give the assistant (or completion) some content");
      ++data.summary_.dropped;
      continue;
    }
    data.summary_.truncated += n > T + 1;
    data.summary_.tokens += static_cast<int64_t>(ex.inputs.size());
    data.summary_.label_tokens += labelled;
    data.examples_.push_back(std::move(ex));
  }
  SLLM_CHECK(nonblank > 0, str("SFT data file '", name, "' has no examples (it is empty or only blank lines)"),
             "give --data a JSONL file with one example per line");
  SLLM_CHECK(options.truncate || overlong == 0,
             str(name, ":", first_overlong_line, ": the example renders to ", first_overlong_ids,
                 " tokens, more than the ", T + 1, " that --seq ", T, " allows (one extra for the shift); ", overlong,
                 " example(s) in the file are that long"),
             str("raise --seq to at least ", first_overlong_ids - 1, ", or pass --truncate to cut such examples"));
  SLLM_CHECK(!data.examples_.empty(),
             str("SFT data file '", name, "': every example was dropped (truncated to --seq ", T,
                 " tokens, none kept a trained token)"),
             "raise --seq, so that assistant turns fit");
  data.summary_.examples = data.size();
  uint64_t h = 0xCBF29CE484222325ull;
  for (const auto& ex : data.examples_) fnv1a(h, ex.inputs), fnv1a(h, ex.targets);
  data.fingerprint_ = h;
  return data;
}

}  // namespace sllm::data

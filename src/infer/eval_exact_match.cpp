#include "infer/eval_exact_match.h"

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "infer/generate.h"

namespace sllm::infer {

using nlohmann::json;

namespace {

const char* kFormatHint =
    "each line: {\"messages\": [{\"role\": \"user\", \"content\": ...}, {\"role\": \"assistant\", \"content\": <answer>}]} "
    "or {\"prompt\": ..., \"completion\": <answer>}";

std::string string_field(const json& obj, const char* key, const std::string& where) {
  SLLM_CHECK(obj.contains(key) && obj[key].is_string(), str(where, ": no string \"", key, "\""), kFormatHint);
  return obj[key].get<std::string>();
}

QaItem parse_line(const std::string& text, const std::string& where) {
  json obj;
  try {
    obj = json::parse(text);
  } catch (const json::exception& e) {
    fail(str(where, ": not valid JSON (", e.what(), ")"), kFormatHint);
  }
  SLLM_CHECK(obj.is_object(), str(where, ": the line is not a JSON object"), kFormatHint);
  QaItem item;
  if (obj.contains("type")) item.type = string_field(obj, "type", where);
  if (obj.contains("messages")) {
    const json& msgs = obj["messages"];
    SLLM_CHECK(msgs.is_array() && msgs.size() >= 2, str(where, ": \"messages\" must be a list of at least two turns"),
               kFormatHint);
    for (size_t i = 0; i < msgs.size(); ++i) {
      const std::string w = str(where, ": message ", i);
      SLLM_CHECK(msgs[i].is_object(), str(w, " is not an object"), kFormatHint);
      tokenizer::ChatMessage m{string_field(msgs[i], "role", w), string_field(msgs[i], "content", w)};
      if (i + 1 < msgs.size()) {
        item.prompt.push_back(std::move(m));
      } else {
        SLLM_CHECK(m.role == "assistant", str(where, ": the last message is '", m.role, "', not the assistant's answer"),
                   kFormatHint);
        item.answer = std::move(m.content);
      }
    }
  } else {
    SLLM_CHECK(obj.contains("prompt") || obj.contains("completion"),
               str(where, ": the line has neither \"messages\" nor \"prompt\"/\"completion\""), kFormatHint);
    item.prompt.push_back({"user", string_field(obj, "prompt", where)});
    item.answer = string_field(obj, "completion", where);
    item.completion = true;
  }
  return item;
}

std::string user_text(const QaItem& item) {
  std::string text;
  for (size_t i = 0; i < item.prompt.size(); ++i) text += (i ? "\n" : "") + item.prompt[i].content;
  return text;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

std::vector<QaItem> parse_qa_jsonl(const std::string& text, const std::string& name) {
  std::vector<QaItem> items;
  std::istringstream in(text);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (trim_whitespace(line).empty()) continue;
    QaItem item = parse_line(line, str(name, ":", number));
    item.line = number;
    items.push_back(std::move(item));
  }
  SLLM_CHECK(!items.empty(), str(name, ": no question in the file"), kFormatHint);
  return items;
}

std::vector<QaItem> load_qa_jsonl(const std::string& path) { return parse_qa_jsonl(read_file(path), path); }

PromptFormat parse_prompt_format(const std::string& name) {
  if (name == "chat") return PromptFormat::chat;
  if (name == "plain") return PromptFormat::plain;
  fail(str("unknown prompt format '", name, "'"),
       "--format chat (ChatML, for chat fine-tuned models) or --format plain (\"...\\nAnswer:\", for base models)");
}

const char* prompt_format_name(PromptFormat f) { return f == PromptFormat::chat ? "chat" : "plain"; }

std::string trim_whitespace(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && is_space(s[a])) ++a;
  while (b > a && is_space(s[b - 1])) --b;
  return s.substr(a, b - a);
}

std::string plain_prompt(const std::vector<const QaItem*>& shots, const QaItem& item) {
  // The text that asks for the answer: a completion line's own prompt, else "<user>\nAnswer:".
  auto cue = [](const QaItem& it) { return it.completion ? it.prompt[0].content : user_text(it) + "\nAnswer:"; };
  std::string text;
  for (const QaItem* s : shots) text += cue(*s) + " " + trim_whitespace(s->answer) + "\n\n";
  return text + cue(item);
}

std::vector<int32_t> prompt_ids(const tokenizer::Tokenizer& tok, PromptFormat format,
                                const std::vector<const QaItem*>& shots, const QaItem& item) {
  if (format == PromptFormat::plain) return tok.encode(plain_prompt(shots, item));  // user text: no special tokens
  std::vector<tokenizer::ChatMessage> messages;
  for (const QaItem* s : shots) {
    messages.insert(messages.end(), s->prompt.begin(), s->prompt.end());
    messages.push_back({"assistant", trim_whitespace(s->answer)});
  }
  messages.insert(messages.end(), item.prompt.begin(), item.prompt.end());
  return tokenizer::render_chatml(tok, messages, /*add_generation_prompt=*/true).ids;
}

std::string extract_answer(const std::string& generated, PromptFormat format) {
  if (format == PromptFormat::plain) return trim_whitespace(generated.substr(0, generated.find('\n')));
  return trim_whitespace(generated);
}

std::vector<int32_t> answer_stop_ids(const tokenizer::Tokenizer& tok, PromptFormat format) {
  std::vector<int32_t> stops;
  for (const char* name : {"<|endoftext|>", "<|im_end|>"}) {
    if (format == PromptFormat::plain && std::string(name) == "<|im_end|>") continue;
    if (const auto id = tok.special_id(name)) stops.push_back(*id);
  }
  if (format == PromptFormat::plain) {
    std::vector<int32_t> specials;
    for (const auto& sp : tok.special_tokens()) specials.push_back(sp.second);
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      if (std::find(specials.begin(), specials.end(), id) != specials.end()) continue;
      const std::string bytes = tok.token_bytes(id);
      if (bytes.find('\n') != std::string::npos && std::all_of(bytes.begin(), bytes.end(), is_space)) stops.push_back(id);
    }
  }
  return stops;
}

std::vector<const QaItem*> pick_shots(const std::vector<QaItem>& pool, int64_t k, uint64_t seed, int64_t index) {
  SLLM_CHECK(k >= 0, str("--shots must be >= 0, got ", k), "e.g. --shots 3");
  SLLM_CHECK(k <= static_cast<int64_t>(pool.size()),
             str("--shots ", k, " but the shot file holds only ", pool.size(), " examples"),
             "use fewer shots or a larger --shots-from file");
  // Partial Fisher-Yates over the pool's indices: k distinct items.
  std::vector<size_t> order(pool.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Rng rng(seed + static_cast<uint64_t>(index));
  std::vector<const QaItem*> shots;
  for (int64_t i = 0; i < k; ++i) {
    const size_t j = static_cast<size_t>(i) + rng.below(order.size() - static_cast<size_t>(i));
    std::swap(order[static_cast<size_t>(i)], order[j]);
    shots.push_back(&pool[order[static_cast<size_t>(i)]]);
  }
  return shots;
}

EvalReport evaluate_exact_match(nn::Transformer& model, const tokenizer::Tokenizer& tok, const std::vector<QaItem>& items,
                                const std::vector<QaItem>& shot_pool, const EvalOptions& opts,
                                const std::function<void(const EvalRecord&)>& on_item) {
  SLLM_CHECK(opts.max_new_tokens > 0, str("--max-new-tokens must be > 0, got ", opts.max_new_tokens), "e.g. --max-new-tokens 16");
  SLLM_CHECK(opts.limit >= 0, str("--limit must be >= 0, got ", opts.limit), "0 evaluates every item");
  const int64_t n = opts.limit > 0 ? std::min<int64_t>(opts.limit, static_cast<int64_t>(items.size()))
                                   : static_cast<int64_t>(items.size());
  const int64_t n_ctx = model.config().n_ctx;

  // Every prompt first: a prompt that cannot fit fails the run before any work is done.
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const QaItem& item = items[static_cast<size_t>(i)];
    prompts[static_cast<size_t>(i)] = prompt_ids(tok, opts.format, pick_shots(shot_pool, opts.shots, opts.seed, i), item);
    const int64_t len = static_cast<int64_t>(prompts[static_cast<size_t>(i)].size());
    SLLM_CHECK(len < n_ctx,
               str("line ", item.line, ": the ", prompt_format_name(opts.format), " prompt with ", opts.shots, " shots is ", len,
                   " tokens; the model's context is ", n_ctx),
               "use fewer --shots (or shorter examples)");
  }

  SamplingConfig greedy;
  greedy.temperature = 0;
  greedy.vocab_limit = tok.vocab_size();
  const std::vector<int32_t> stops = answer_stop_ids(tok, opts.format);
  EvalReport report;
  for (int64_t i = 0; i < n; ++i) {
    const QaItem& item = items[static_cast<size_t>(i)];
    const std::vector<int32_t>& ids = prompts[static_cast<size_t>(i)];
    const std::vector<int32_t> out = generate(model, ids, opts.max_new_tokens, greedy, stops, {});
    EvalRecord r;
    r.line = item.line;
    r.type = item.type;
    const std::string prompt_text = tok.decode(ids);
    r.prompt_tail = prompt_text.size() > 120 ? "..." + prompt_text.substr(prompt_text.size() - 117) : prompt_text;
    r.expected = trim_whitespace(item.answer);
    r.got = extract_answer(tok.decode(out), opts.format);
    r.correct = r.got == r.expected;
    ++report.count;
    report.correct += r.correct;
    TypeScore& t = report.per_type[item.type.empty() ? "none" : item.type];
    ++t.count;
    t.correct += r.correct;
    report.prompt_tokens += static_cast<int64_t>(ids.size());
    report.generated_tokens += static_cast<int64_t>(out.size());
    if (on_item) on_item(r);
    report.records.push_back(std::move(r));
  }
  report.accuracy = report.count ? static_cast<double>(report.correct) / static_cast<double>(report.count) : 0.0;
  return report;
}

}  // namespace sllm::infer

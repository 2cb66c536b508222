#include "data/story_qa.h"

#include <filesystem>
#include <span>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/story_lexicon.h"
#include "data/story_template.h"

namespace sllm::data {

namespace {

template <typename T>
const T& pick(std::span<const T> items, Rng& rng) {
  return items[rng.below(items.size())];
}

// Toys whose name holds a colour ("red hat") would make "What color was the red hat?" odd.
bool names_a_color(const std::string& noun) {
  for (const char* c : lexicon::colors())
    if (noun.rfind(std::string(c) + " ", 0) == 0) return true;
  return false;
}

struct Candidate {
  std::string type, question, answer;
};

enum class Fact { find, count, feel };

}  // namespace

const std::vector<std::string>& story_qa_types() {
  static const std::vector<std::string> types = {"where", "who", "color", "count", "feeling"};
  return types;
}

StoryQa generate_story_qa(Rng& rng) {
  const auto names = lexicon::child_names();
  const size_t ia = rng.below(names.size());
  size_t ib = rng.below(names.size() - 1);
  if (ib >= ia) ++ib;  // two different children
  const std::string who[2] = {names[ia].name, names[ib].name};
  const lexicon::Place& place = pick(lexicon::places(), rng);
  const std::string time = pick(lexicon::times_of_day(), rng);

  std::vector<std::string> sentences;
  std::vector<Candidate> candidates;
  if (rng.below(2) == 0)
    sentences.push_back(str("One ", time, ", ", who[0], " and ", who[1], " played ", place.at, "."));
  else
    sentences.push_back(str(who[0], " and ", who[1], " spent the ", time, " ", place.at, "."));
  candidates.push_back({"where", str("Where were ", who[0], " and ", who[1], "?"), place.at});

  // The question type first, uniform over the five, so the easy "where" (every story has
  // one) is no more common than the others; one of the two facts, in a random slot, is of
  // the kind that type asks about.
  const std::string type = story_qa_types()[rng.below(story_qa_types().size())];
  const int required_slot = static_cast<int>(rng.below(2));
  const Fact required = type == "count" ? Fact::count : type == "feeling" ? Fact::feel : Fact::find;

  // Two facts; the second never repeats the first's type for the same child, and objects
  // never repeat, so every question has exactly one answer in the story.
  Fact first_fact = Fact::find;
  int first_subject = -1;
  std::string used_toy, used_things;
  for (int f = 0; f < 2; ++f) {
    const auto drawn = static_cast<Fact>(rng.below(3));
    const Fact fact = (type != "where" && f == required_slot) ? required : drawn;
    int subject = static_cast<int>(rng.below(2));
    if (f == 1 && fact == first_fact && subject == first_subject) subject = 1 - subject;
    const std::string& x = who[subject];
    if (fact == Fact::find) {
      std::string toy;
      do toy = pick(lexicon::toys(), rng).one;
      while (toy == used_toy || names_a_color(toy));
      used_toy = toy;
      const std::string color = pick(lexicon::colors(), rng);
      sentences.push_back(fix_articles(str(x, " found a ", color, " ", toy, ".")));
      candidates.push_back({"who", str("Who found the ", toy, "?"), x});
      candidates.push_back({"color", str("What color was the ", toy, "?"), color});
    } else if (fact == Fact::count) {
      std::string things;
      do things = pick(lexicon::countables(), rng).many;
      while (things == used_things);
      used_things = things;
      const std::string n = lexicon::number_words()[2 + rng.below(11)];  // two .. twelve
      sentences.push_back(str(x, " had ", n, " ", things, "."));
      candidates.push_back({"count", str("How many ", things, " did ", x, " have?"), n});
    } else {
      const auto feelings = rng.below(2) == 0 ? lexicon::good_feelings() : lexicon::bad_feelings();
      const std::string feeling = pick(feelings, rng);
      sentences.push_back(str(x, " felt ", feeling, "."));
      candidates.push_back({"feeling", str("How did ", x, " feel?"), feeling});
    }
    first_fact = fact;
    first_subject = subject;
  }

  // One of the story's questions of that type (two when both facts are of its kind).
  std::vector<const Candidate*> of_type;
  for (const Candidate& c : candidates)
    if (c.type == type) of_type.push_back(&c);
  SLLM_ASSERT(!of_type.empty());
  const Candidate& q = *of_type[rng.below(of_type.size())];

  StoryQa ex;
  for (size_t i = 0; i < sentences.size(); ++i) ex.story += (i ? " " : "") + sentences[i];
  ex.question = q.question;
  ex.answer = q.answer;
  ex.type = q.type;
  return ex;
}

std::string story_qa_user_text(const StoryQa& ex) { return str("Story: ", ex.story, "\nQuestion: ", ex.question); }

std::string story_qa_jsonl_line(const StoryQa& ex) {
  nlohmann::json line;
  line["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", story_qa_user_text(ex)}},
                                            {{"role", "assistant"}, {"content", ex.answer}}});
  line["type"] = ex.type;
  return line.dump();
}

StoryQaSplits make_story_qa(int64_t train, int64_t val, int64_t test, uint64_t seed) {
  SLLM_CHECK(train >= 0 && val >= 0 && test >= 0,
             str("story-qa: split sizes must be non-negative, got train ", train, ", val ", val, ", test ", test),
             "e.g. --train 4000 --val 200 --test 300");
  Rng rng(seed);
  std::unordered_set<std::string> seen;
  auto draw = [&](int64_t n, std::vector<StoryQa>& out) {
    // The world holds millions of stories; a run of misses this long means it is exhausted.
    int64_t misses = 0;
    while (static_cast<int64_t>(out.size()) < n) {
      StoryQa ex = generate_story_qa(rng);
      if (!seen.insert(ex.story).second) {
        SLLM_CHECK(++misses < 100000, str("story-qa: could not draw ", n, " distinct stories"), "ask for fewer examples");
        continue;
      }
      misses = 0;
      out.push_back(std::move(ex));
    }
  };
  StoryQaSplits s;
  draw(test, s.test);
  draw(val, s.val);
  draw(train, s.train);
  return s;
}

void write_story_qa(const std::string& dir, const StoryQaSplits& splits, uint64_t seed) {
  AtomicDirectory out(dir);
  const std::filesystem::path tmp(out.temp_path());
  auto write_split = [&](const char* name, const std::vector<StoryQa>& examples) {
    std::string text;
    for (const StoryQa& ex : examples) text += story_qa_jsonl_line(ex) + "\n";
    write_file_atomic((tmp / name).string(), text);
  };
  write_split("train.jsonl", splits.train);
  write_split("val.jsonl", splits.val);
  write_split("test.jsonl", splits.test);
  write_file_atomic((tmp / "README").string(),
                    str("Story QA (sllm, src/data/story_qa.h; see data/README.md). Rebuild with:\n"
                        "  sllm data story-qa --out ", dir, " --train ", splits.train.size(), " --val ", splits.val.size(),
                        " --test ", splits.test.size(), " --seed ", seed, "\n"));
  out.commit();
}

}  // namespace sllm::data

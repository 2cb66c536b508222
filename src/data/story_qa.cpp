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

StoryQa generate_story_qa(Rng& rng, int children) {
  SLLM_CHECK(children == 1 || children == 2, str("story-qa: children must be 1 or 2, got ", children),
             "1: one child, each question a lookup; 2: a second child as a distractor");
  const auto names = lexicon::child_names();
  const size_t ia = rng.below(names.size());
  size_t ib = rng.below(names.size() - 1);
  if (ib >= ia) ++ib;  // two different children
  const std::string who[2] = {names[ia].name, names[ib].name};
  const lexicon::Place& place = pick(lexicon::places(), rng);
  const std::string time = pick(lexicon::times_of_day(), rng);

  std::vector<std::string> sentences;
  std::vector<Candidate> candidates;
  const std::string subjects = children == 1 ? who[0] : str(who[0], " and ", who[1]);
  if (rng.below(2) == 0)
    sentences.push_back(str("One ", time, ", ", subjects, " played ", place.at, "."));
  else
    sentences.push_back(str(subjects, " spent the ", time, " ", place.at, "."));
  candidates.push_back({"where", str(children == 1 ? "Where was " : "Where were ", subjects, "?"), place.at});

  // The question type first, uniform over the five, so the easy "where" (every story has
  // one) is no more common than the others; one of the two facts, in a random slot, is of
  // the kind that type asks about.
  const std::string type = story_qa_types()[rng.below(story_qa_types().size())];
  const int required_slot = static_cast<int>(rng.below(2));
  const Fact required = type == "count" ? Fact::count : type == "feeling" ? Fact::feel : Fact::find;
  Fact facts[2] = {static_cast<Fact>(rng.below(3)), static_cast<Fact>(rng.below(3))};
  if (type != "where") facts[required_slot] = required;
  // One child: the two facts are of different kinds, so each answer is the story's only word
  // of its kind (a name, a colour, a number, a feeling, a place).
  if (children == 1 && facts[0] == facts[1]) {
    const int other = type != "where" ? 1 - required_slot : 1;
    facts[other] = static_cast<Fact>((static_cast<int>(facts[other]) + 1 + rng.below(2)) % 3);
  }

  // Two children: the second never repeats the first's kind of fact for the same child, and
  // objects never repeat, so every question has exactly one answer in the story.
  int first_subject = -1;
  std::string used_toy, used_things;
  for (int f = 0; f < 2; ++f) {
    const Fact fact = facts[f];
    int subject = static_cast<int>(rng.below(static_cast<uint64_t>(children)));
    if (f == 1 && fact == facts[0] && subject == first_subject) subject = 1 - subject;
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

std::string story_qa_completion_line(const StoryQa& ex) {
  nlohmann::json line;
  line["prompt"] = story_qa_user_text(ex) + "\nAnswer:";
  line["completion"] = " " + ex.answer;
  line["type"] = ex.type;
  return line.dump();
}

StoryQaSplits make_story_qa(int64_t train, int64_t val, int64_t test, uint64_t seed, int children) {
  SLLM_CHECK(train >= 0 && val >= 0 && test >= 0,
             str("story-qa: split sizes must be non-negative, got train ", train, ", val ", val, ", test ", test),
             "e.g. --train 4000 --val 200 --test 300");
  Rng rng(seed);
  std::unordered_set<std::string> seen;
  auto draw = [&](int64_t n, std::vector<StoryQa>& out) {
    // The world holds millions of stories; a run of misses this long means it is exhausted.
    int64_t misses = 0;
    while (static_cast<int64_t>(out.size()) < n) {
      StoryQa ex = generate_story_qa(rng, children);
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

void write_story_qa(const std::string& dir, const StoryQaSplits& splits, uint64_t seed, int children) {
  AtomicDirectory out(dir);
  const std::filesystem::path tmp(out.temp_path());
  auto write_split = [&](const std::string& name, const std::vector<StoryQa>& examples) {
    std::string chat, completion;
    for (const StoryQa& ex : examples) {
      chat += story_qa_jsonl_line(ex) + "\n";
      completion += story_qa_completion_line(ex) + "\n";
    }
    write_file_atomic((tmp / (name + ".jsonl")).string(), chat);
    write_file_atomic((tmp / (name + ".completion.jsonl")).string(), completion);
  };
  write_split("train", splits.train);
  write_split("val", splits.val);
  write_split("test", splits.test);
  write_file_atomic((tmp / "README").string(),
                    str("Story QA (sllm, src/data/story_qa.h; see data/README.md). Rebuild with:\n"
                        "  sllm data story-qa --out ", dir, " --train ", splits.train.size(), " --val ", splits.val.size(),
                        " --test ", splits.test.size(), " --seed ", seed, " --children ", children, "\n"));
  out.commit();
}

}  // namespace sllm::data

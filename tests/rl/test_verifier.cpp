// The verifiers on hand-written responses: pass and fail cases, word boundaries, case,
// punctuation and what a sentence is, and the errors for a missing field or an unknown name.
#include "rl/verifier.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/rlhf_story.h"

namespace sllm::rl {
namespace {

using nlohmann::json;

// The sllm::Error message of f(), "" when it does not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

double reward(const std::string& verifier, const json& example, const std::string& response) {
  return make_verifier(verifier)->reward(example, response);
}

TEST(Verifier, MentionsNameAsAWholeWordWithItsCase) {
  const json lily = {{"name", "Lily"}};
  EXPECT_EQ(reward("mentions-name", lily, "Lily"), 1.0);
  EXPECT_EQ(reward("mentions-name", lily, " Lily found a kite."), 1.0);
  EXPECT_EQ(reward("mentions-name", lily, "The kite was Lily's."), 1.0);  // the apostrophe separates
  EXPECT_EQ(reward("mentions-name", lily, "\"Hi, (Lily)!\""), 1.0);
  EXPECT_EQ(reward("mentions-name", lily, "Tom and\nLily\n"), 1.0);
  EXPECT_EQ(reward("mentions-name", lily, "Lilyanne found a kite."), 0.0);  // inside a longer name
  EXPECT_EQ(reward("mentions-name", lily, "Lily2"), 0.0);
  EXPECT_EQ(reward("mentions-name", lily, "a lily grew by the pond"), 0.0);  // the flower, not the girl
  EXPECT_EQ(reward("mentions-name", lily, "LILY"), 0.0);
  EXPECT_EQ(reward("mentions-name", lily, "Tom found a kite."), 0.0);
  EXPECT_EQ(reward("mentions-name", lily, ""), 0.0);
  // A later whole-word match counts even when an earlier one is inside a word.
  EXPECT_EQ(reward("mentions-name", lily, "Lilyanne met Lily."), 1.0);
  // A UTF-8 letter is a word character: "Zoë" does not mention "Zo".
  EXPECT_EQ(reward("mentions-name", json{{"name", "Zo"}}, "Zo\xc3\xab smiled."), 0.0);
  EXPECT_EQ(reward("mentions-name", json{{"name", "Zo\xc3\xab"}}, "Zo\xc3\xab smiled."), 1.0);
}

TEST(Verifier, UsesWordIgnoringAsciiCase) {
  const json nervous = {{"word", "nervous"}};
  EXPECT_EQ(reward("uses-word", nervous, " nervous"), 1.0);
  EXPECT_EQ(reward("uses-word", nervous, "Nervous, Lily waited."), 1.0);
  EXPECT_EQ(reward("uses-word", nervous, "She felt NERVOUS!"), 1.0);
  EXPECT_EQ(reward("uses-word", nervous, "nervously"), 0.0);
  EXPECT_EQ(reward("uses-word", nervous, "unnervous"), 0.0);
  EXPECT_EQ(reward("uses-word", nervous, " angry"), 0.0);
  EXPECT_EQ(reward("uses-word", json{{"word", "sad"}}, "She was sadder."), 0.0);
  EXPECT_EQ(reward("uses-word", json{{"word", "sad"}}, "sad."), 1.0);
  // A phrase: the words in order with the same inner spacing, whole at both ends.
  const json park = {{"word", "in the park"}};
  EXPECT_EQ(reward("uses-word", park, " In the park"), 1.0);
  EXPECT_EQ(reward("uses-word", park, "in the parking lot"), 0.0);
  EXPECT_EQ(reward("uses-word", park, "in  the park"), 0.0);
}

TEST(Verifier, CountSentences) {
  EXPECT_EQ(count_sentences(""), 0);
  EXPECT_EQ(count_sentences("   "), 0);
  EXPECT_EQ(count_sentences("..."), 0);
  EXPECT_EQ(count_sentences("!!! ?"), 0);
  EXPECT_EQ(count_sentences("nervous"), 1);  // unfinished, still one
  EXPECT_EQ(count_sentences("Lily ran."), 1);
  EXPECT_EQ(count_sentences("Lily ran. Tom hid."), 2);
  EXPECT_EQ(count_sentences("Lily ran. Tom hid"), 2);
  EXPECT_EQ(count_sentences("Lily ran!Tom hid."), 1);  // no space after the mark: not an end
  EXPECT_EQ(count_sentences("Lily ran.\nTom hid.\n\nThe end."), 3);
  EXPECT_EQ(count_sentences("\"Stop!\" said Tom."), 1);
  EXPECT_EQ(count_sentences("\"Oh no! Where is it?\" cried Lily."), 2);
  EXPECT_EQ(count_sentences("\"Thank you!\" Lily hugged him."), 2);
  EXPECT_EQ(count_sentences("It cost 3.50 coins."), 1);
  EXPECT_EQ(count_sentences("Wait... what?"), 1);
  EXPECT_EQ(count_sentences("Really?! Yes."), 2);
  EXPECT_EQ(count_sentences("(She smiled.) Then she left."), 2);
  EXPECT_EQ(count_sentences("Mr. Brown came."), 2);  // documented: no abbreviations
}

TEST(Verifier, SentenceCountIsExact) {
  const json two = {{"sentences", 2}};
  EXPECT_EQ(reward("sentence-count", two, "Lily ran. Tom hid."), 1.0);
  EXPECT_EQ(reward("sentence-count", two, "Lily ran."), 0.0);
  EXPECT_EQ(reward("sentence-count", two, "Lily ran. Tom hid. The end."), 0.0);
  EXPECT_EQ(reward("sentence-count", json{{"sentences", 0}}, ""), 1.0);
  EXPECT_EQ(reward("sentence-count", json{{"sentences", 0}}, "Hi."), 0.0);
}

TEST(Verifier, MissingOrWrongFieldNamesIt) {
  std::string e = error_of([] { reward("mentions-name", json{{"word", "x"}}, "Lily"); });
  EXPECT_NE(e.find("mentions-name"), std::string::npos) << e;
  EXPECT_NE(e.find("\"name\""), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  e = error_of([] { reward("uses-word", json{{"name", "Lily"}}, "x"); });
  EXPECT_NE(e.find("\"word\""), std::string::npos) << e;
  e = error_of([] { reward("uses-word", json{{"word", ""}}, "x"); });
  EXPECT_NE(e.find("non-empty string"), std::string::npos) << e;
  e = error_of([] { reward("mentions-name", json{{"name", 3}}, "3"); });
  EXPECT_NE(e.find("non-empty string"), std::string::npos) << e;
  e = error_of([] { reward("sentence-count", json::object(), "x"); });
  EXPECT_NE(e.find("\"sentences\""), std::string::npos) << e;
  for (const json& bad : {json{{"sentences", "two"}}, json{{"sentences", -1}}, json{{"sentences", 2.5}}}) {
    e = error_of([&] { reward("sentence-count", bad, "x"); });
    EXPECT_NE(e.find("integer >= 0"), std::string::npos) << bad.dump() << ": " << e;
  }
  e = error_of([] { reward("uses-word", json::array({"nervous"}), "nervous"); });
  EXPECT_NE(e.find("not a JSON object"), std::string::npos) << e;
}

TEST(Verifier, UnknownNameListsTheKnownOnes) {
  const std::string e = error_of([] { make_verifier("mention-name"); });
  EXPECT_NE(e.find("unknown verifier 'mention-name'"), std::string::npos) << e;
  for (const char* known : {"mentions-name", "uses-word", "sentence-count"}) EXPECT_NE(e.find(known), std::string::npos) << e;
  const std::vector<std::string> expected = {"mentions-name", "sentence-count", "uses-word"};
  EXPECT_EQ(verifier_names(), expected);
  for (const std::string& n : verifier_names()) EXPECT_EQ(make_verifier(n)->name(), n);
}

TEST(Verifier, NameForALine) {
  EXPECT_EQ(verifier_name_for(json{{"verifier", "uses-word"}}, ""), "uses-word");
  EXPECT_EQ(verifier_name_for(json{{"verifier", "uses-word"}}, "mentions-name"), "mentions-name");
  const std::string e = error_of([] { verifier_name_for(json{{"prompt", "x"}}, ""); });
  EXPECT_NE(e.find("--verifier"), std::string::npos) << e;
}

// The demo data of `sllm data rlhf-story`, graded by the verifier its lines name: the story's
// word passes, every chosen answer passes and every rejected answer fails.
TEST(Verifier, RlhfStoryPairsAreLabelledByTheVerifier) {
  const data::RlhfStorySplits s = data::make_rlhf_story(300, 100, 100, 11);
  for (const auto* prompts : {&s.train_prompts, &s.test_prompts}) {
    for (const data::RlhfPrompt& p : *prompts) {
      const json line = json::parse(data::rlhf_prompt_line(p));
      const auto v = make_verifier(verifier_name_for(line, ""));
      EXPECT_EQ(v->reward(line, " " + p.word), 1.0) << line.dump();
      EXPECT_EQ(v->reward(line, " in the park"), 0.0) << line.dump();
    }
  }
  ASSERT_EQ(s.train_pairs.size(), s.train_prompts.size());
  for (size_t i = 0; i < s.train_pairs.size(); ++i) {  // each training story gives a prompt and a pair
    const json line = json::parse(data::rlhf_prompt_line(s.train_prompts[i]));
    const json pair = json::parse(data::rlhf_pair_line(s.train_pairs[i]));
    ASSERT_EQ(pair.at("prompt"), line.at("prompt"));
    const auto v = make_verifier(line.at("verifier"));
    EXPECT_EQ(v->reward(line, pair.at("chosen")), 1.0) << pair.dump();
    EXPECT_EQ(v->reward(line, pair.at("rejected")), 0.0) << pair.dump();
  }
  for (const data::RlhfPair& p : s.val_pairs) {
    const json example = {{"word", p.chosen.substr(1)}};
    EXPECT_EQ(make_verifier("uses-word")->reward(example, p.rejected), 0.0) << p.rejected << " vs" << p.chosen;
  }
}

}  // namespace
}  // namespace sllm::rl

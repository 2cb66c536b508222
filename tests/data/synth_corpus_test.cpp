// The synthetic story corpus: reproducible, and the text has the structure the brief asks for.
#include "data/synth_corpus.h"

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/prepare.h"
#include "data/story_grammar.h"
#include "data/story_template.h"
#include "test_dir.h"

namespace sllm::data {
namespace {

constexpr int64_t kSample = 512 * 1024;  // enough for every plot many times over

const std::string& sample() {
  static const std::string text = synth_corpus(kSample, 1337);
  return text;
}

TEST(SynthCorpus, SameSeedSameBytesDifferentSeedDifferentBytes) {
  const std::string a = synth_corpus(100000, 7), b = synth_corpus(100000, 7), c = synth_corpus(100000, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GE(static_cast<int64_t>(a.size()), 100000);
}

TEST(SynthCorpus, WrittenFileEqualsInMemoryCorpus) {
  testing::TempDir dir;
  const SynthSummary summary = write_synth_corpus(dir.path, 300000, 42);
  const std::string text = read_file(dir.path + "/train.txt");
  EXPECT_EQ(text, synth_corpus(300000, 42));
  EXPECT_EQ(summary.bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(summary.stories, static_cast<int64_t>(split_documents(text).size()));
  // Only train.txt and README: no temporary files left behind.
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) names.insert(entry.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"README", "train.txt"}));
}

TEST(SynthCorpus, NonPositiveSizeIsAnError) { EXPECT_THROW(synth_corpus(0, 1), Error); }

TEST(SynthCorpus, StoriesAreSeparatedBySeparatorLines) {
  const std::string& text = sample();
  // Every story is followed by "\n<|endoftext|>\n", so the text ends with one and the
  // separator never shares a line with story text.
  EXPECT_EQ(text.substr(text.size() - 15), "\n<|endoftext|>\n");
  int64_t separators = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(kDocumentSeparator) != std::string::npos) {
      EXPECT_EQ(line, kDocumentSeparator);
      ++separators;
    }
  }
  EXPECT_EQ(separators, static_cast<int64_t>(split_documents(text).size()));
  EXPECT_GT(separators, 500);
}

TEST(SynthCorpus, HasManyDistinctWords) {
  std::set<std::string> words;
  std::string word;
  for (char c : sample()) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.insert(word);
      word.clear();
    }
  }
  EXPECT_GE(words.size(), 600u);
  for (const char* w : {"three", "apples", "because", "said", "happy", "park", "learned", "she", "he", "friend"})
    EXPECT_TRUE(words.count(w)) << w;
}

TEST(SynthCorpus, EveryStoryHasBalancedQuotesAndNoTemplateSyntax) {
  int64_t with_dialogue = 0;
  for (std::string_view story : split_documents(sample())) {
    const auto quotes = std::count(story.begin(), story.end(), '"');
    EXPECT_EQ(quotes % 2, 0) << story;
    with_dialogue += quotes > 0;
    EXPECT_EQ(story.find_first_of("{}[]|"), std::string_view::npos) << story;
    EXPECT_GE(std::count(story.begin(), story.end(), '\n'), 2) << "expected a beginning, middle and end:\n" << story;
  }
  EXPECT_GT(with_dialogue, static_cast<int64_t>(split_documents(sample()).size() * 8 / 10));
}

TEST(SynthCorpus, SentencesStartWithCapitalsAndArticlesAgree) {
  const std::string& text = sample();
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if ((text[i] == '.' || text[i] == '!' || text[i] == '?') && text[i + 1] == ' ') {
      const char next = text[i + 2] == '"' ? text[i + 3] : text[i + 2];
      ASSERT_FALSE(std::islower(static_cast<unsigned char>(next))) << text.substr(i > 60 ? i - 60 : 0, 120);
    }
  }
  EXPECT_FALSE(std::regex_search(text, std::regex(R"(\b[Aa] [aeiou])")));
  EXPECT_FALSE(std::regex_search(text, std::regex(R"(\b[Aa]n [bcdfghjklmnpqrstvwxyz])")));
}

TEST(SynthCorpus, WrittenSumsAndDifferencesAreRight) {
  const std::string& text = sample();
  const std::regex sum(R"((\d+) \+ (\d+) = (\d+))"), difference(R"((\d+) - (\d+) = (\d+))");
  int64_t sums = 0, differences = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), sum); it != std::sregex_iterator(); ++it, ++sums)
    EXPECT_EQ(std::stoi((*it)[1]) + std::stoi((*it)[2]), std::stoi((*it)[3])) << it->str();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), difference); it != std::sregex_iterator();
       ++it, ++differences)
    EXPECT_EQ(std::stoi((*it)[1]) - std::stoi((*it)[2]), std::stoi((*it)[3])) << it->str();
  EXPECT_GT(sums, 20);
  EXPECT_GT(differences, 10);
  // Sums in words too: "three and two make five".
  const char* words[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                         "nineteen", "twenty"};
  auto value = [&](const std::string& w) {
    std::string lower = w;
    lower[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[0])));
    return static_cast<int>(std::find(std::begin(words), std::end(words), lower) - std::begin(words));
  };
  const std::regex spoken(R"(([A-Za-z]+) and ([a-z]+) make ([a-z]+))");
  int64_t spoken_sums = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), spoken); it != std::sregex_iterator(); ++it, ++spoken_sums)
    EXPECT_EQ(value((*it)[1]) + value((*it)[2]), value((*it)[3])) << it->str();
  EXPECT_GT(spoken_sums, 10);
}

// The hero's pronoun agrees with the hero: a story that opens with "a ... girl named X." never
// continues with "He"/"His" in the next sentence (which is always about the hero), and the
// same for boys.
TEST(SynthCorpus, HeroPronounsAgreeWithTheOpening) {
  const std::regex opening(R"(^(?:Once upon a time, there was|There once was) a [a-z]+ (girl|boy) (?:named|called) [A-Za-z]+\. (\w+) )");
  int64_t checked = 0;
  for (std::string_view story : split_documents(sample())) {
    std::match_results<std::string_view::const_iterator> m;
    if (!std::regex_search(story.begin(), story.end(), m, opening)) continue;
    const std::string next = m[2];
    if (next != "He" && next != "She" && next != "His" && next != "Her") continue;
    ++checked;
    const bool female = m[1] == "girl";
    EXPECT_EQ(female, next == "She" || next == "Her") << story;
  }
  EXPECT_GT(checked, 100);
}

TEST(StoryTemplate, ExpandsKeysAndNestedAlternativesDeterministically) {
  Bindings vars{{"A", "Lily"}, {"A.he", "she"}};
  Rng r1(5), r2(5);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string a = expand("{A} [ran|[sang|danced] when {A.he} was happy].", vars, r1);
    EXPECT_EQ(a, expand("{A} [ran|[sang|danced] when {A.he} was happy].", vars, r2));
    seen.insert(a);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"Lily ran.", "Lily sang when she was happy.", "Lily danced when she was happy."}));
  EXPECT_THROW(expand("{missing}", vars, r1), Error);
}

TEST(StoryTemplate, CapitalizesSentenceStartsButNotAfterClosingQuotes) {
  EXPECT_EQ(capitalize_sentences("the ball rolled. \"oh no!\" said Tom. it was gone!\nthen"),
            "The ball rolled. \"Oh no!\" said Tom. It was gone!\nThen");
  EXPECT_EQ(fix_articles("a orange kite and a red one. A apple"), "an orange kite and a red one. An apple");
}

}  // namespace
}  // namespace sllm::data

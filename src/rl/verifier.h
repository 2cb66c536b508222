// Verifiers: rewards computed by a rule instead of a learned reward model (`sllm ppo --reward
// verifier:NAME`, `sllm grpo`, `sllm verify`). A verifier reads one prompt line of a prompts
// file (data/README.md, rlhf-story) and a generated response, and says pass (1) or fail (0).
// Rules that a program checks exactly are the "verifiable rewards" of RLVR (Lambert et al.
// 2024, "Tülu 3", section 6): no reward model to exploit, and the pass rate is the metric.
//
// What counts, for every verifier:
//   word characters  ASCII letters and digits, and every byte >= 0x80 (a letter of a UTF-8
//                    word such as "Zoë" never splits it); everything else (space, punctuation,
//                    the apostrophe of "Lily's", the hyphen of "yo-yo") separates words.
//   whole word       a match whose first byte is not preceded by a word character and whose
//                    last byte is not followed by one: "Lily" is in "Lily's kite." and in
//                    "(Lily)", not in "Lilyanne" or "Lily2".
//
//   mentions-name   field "name" (a string): the response holds the name as a whole word,
//                   case-sensitively ("Lily" yes, "lily" the flower no, "LILY" no).
//   uses-word       field "word" (a string, one word or a phrase such as "in the park"): the
//                   response holds it as a whole word, ignoring ASCII case (a word may open a
//                   sentence: "Nervous, Lily..." uses "nervous"). Inner spaces match exactly.
//   sentence-count  field "sentences" (an integer >= 0): the response has exactly that many
//                   sentences (count_sentences below).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sllm::rl {

class Verifier {
 public:
  virtual ~Verifier() = default;
  // 1.0 when the response passes, else 0.0. sllm::Error naming the field (and the verifier)
  // when the example lacks a field the rule needs or holds it with the wrong type.
  virtual double reward(const nlohmann::json& example, const std::string& response) const = 0;
  // The registered name ("mentions-name"), and the fields reward() reads from the example.
  virtual const char* name() const = 0;
  virtual std::vector<std::string> fields() const = 0;
};

// The verifier registered under `name`; sllm::Error listing the known names otherwise.
std::unique_ptr<Verifier> make_verifier(const std::string& name);

// "mentions-name", "sentence-count", "uses-word" (sorted).
std::vector<std::string> verifier_names();

// The verifier a prompt line asks for: `override_name` when not empty, else the line's own
// "verifier" field (sllm::Error with a hint when it has none and no override is given).
std::string verifier_name_for(const nlohmann::json& example, const std::string& override_name);

// True when `needle` occurs in `text` as a whole word (see above); ignore_case folds ASCII
// letters only. An empty needle is never found.
bool contains_whole_word(const std::string& text, const std::string& needle, bool ignore_case);

// The number of sentences in `text`. A sentence ends at a run of '.', '!' or '?' (with any
// closing quotes or brackets right after it: `."`, `?)`) that is followed by the end of the
// text, or by whitespace and then a character that is not a lower-case letter. So
//   `Lily ran. Tom hid.`                     2
//   `"Stop!" said Tom.`                      1  (the quoted "Stop!" runs on: "said" is lower case)
//   `"Oh no! Where is it?" cried Lily.`      2  ("Oh no!" is one, the rest another)
//   `It cost 3.50 coins.`                    1  (a '.' between digits is followed by no space)
//   `Wait... what?`                          1  ("..." runs on into lower-case "what")
// Text after the last end that holds a letter or digit counts as one more (unfinished)
// sentence: a one-word answer "nervous" is 1 sentence, "" and "..." are 0. A span with no
// letter or digit ("!!! ?") is never a sentence. Abbreviations are not special ("Mr. Brown
// came." is 2): the story world has none.
int64_t count_sentences(const std::string& text);

}  // namespace sllm::rl

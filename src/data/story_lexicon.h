// The word lists of the synthetic story corpus: who (characters and their pronouns), where
// (places), what (things to count, toys, food), and how (feelings, weather, activities).
// Every word here was chosen by the project for `sllm data synth`; no third-party text.
#pragma once
#include <span>

namespace sllm::data::lexicon {

struct Name {
  const char* name;
  bool female;  // picks she/her/her or he/him/his, kept for the whole story
};

struct Noun {
  const char* one;   // "apple"
  const char* many;  // "apples"
};

struct Place {
  const char* at;     // "in the park": where something happens
  const char* to;     // "to the park": where someone goes
  const char* thing;  // something found there: "the swings"
};

struct Activity {
  const char* base;  // "fly a kite": after "wanted to"
  const char* ing;   // "flying a kite": after "loved"
  const char* past;  // "flew a kite"
};

std::span<const Name> child_names();
std::span<const Name> animal_names();
std::span<const char* const> animal_kinds();   // "rabbit", "fox", ...
std::span<const char* const> child_kinds();    // "girl"/"boy" are added by gender; these are adjectives: "little", "kind"
std::span<const char* const> colors();
std::span<const char* const> sizes();
std::span<const char* const> qualities();      // "shiny", "soft", ...
std::span<const Noun> countables();            // things to count and share: apples, shells...
std::span<const Noun> toys();                  // things to lose and find: a ball, a kite...
std::span<const Noun> small_animals();         // animals to help: a bird, a kitten...
std::span<const Place> places();
std::span<const Activity> activities();
std::span<const char* const> good_feelings();  // happy, glad, proud...
std::span<const char* const> bad_feelings();   // sad, scared, grumpy...
std::span<const char* const> fears();          // "the dark", "the big dog"...
std::span<const char* const> skills();         // "ride a bike", "tie shoes"...
std::span<const char* const> number_words();   // "zero" .. "twenty"
std::span<const char* const> family();         // "Mom", "Dad", "Grandma", "Grandpa"
std::span<const char* const> times_of_day();   // "morning", ...

}  // namespace sllm::data::lexicon

// A tiny template language for the synthetic story grammar (story_grammar.cpp).
//
//   {key}          the value bound to `key` (a character's name, a pronoun, a number word...)
//   [a|b|c]        one alternative, chosen uniformly with the story's Rng; alternatives nest
//                  and may hold {keys}: "[{A} smiled|{A.He} [laughed|giggled]]"
//
// Templates are written by the project (no third-party text). Expansion is deterministic for
// a given Rng state, which is what makes `sllm data synth --seed S` reproducible.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "core/rng.h"

namespace sllm::data {

using Bindings = std::map<std::string, std::string, std::less<>>;

// Expands `tmpl`; an unbound {key} or an unbalanced bracket is a bug in a template (internal error).
std::string expand(std::string_view tmpl, const Bindings& vars, Rng& rng);

// Makes the first letter of the text and of every sentence upper case (after ". ", "! ",
// "? " and a newline, skipping an opening quote), so templates may start a sentence with a
// lower-case binding such as "{obj}".
std::string capitalize_sentences(std::string text);

// Turns the article "a" into "an" before a vowel ("a orange kite" -> "an orange kite"), so
// templates can write "a {color} {toy}" whatever the colour.
std::string fix_articles(const std::string& text);

}  // namespace sllm::data

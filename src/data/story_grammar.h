// The grammar of the built-in synthetic English corpus (`sllm data synth`): simple children's
// stories with named characters whose pronouns stay consistent, places, objects, feelings,
// dialogue in quotes, numbers (counting, "three apples", simple sums and differences), cause
// and effect, and a beginning, a middle and an end.
//
// Why a grammar: a small model trained for a few minutes needs text that is varied (hundreds
// of words, ten plots, nested clauses) yet regular enough that its loss falls clearly and its
// samples can be judged by eye. The arithmetic in the stories is always right, so a model that
// learns it learns something true. All words and templates are the project's own.
#pragma once
#include <string>

#include "core/rng.h"

namespace sllm::data {

// One story: a few paragraphs separated by '\n', no trailing newline, no document separator.
// Deterministic for a given Rng state; advances the Rng.
std::string generate_story(Rng& rng);

}  // namespace sllm::data

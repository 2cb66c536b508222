// Ten plots, each a beginning (who, where), a middle (a want, a problem, attempts) and an
// end (a resolution and what was learned). Sentences are templates (story_template.h) whose
// keys are bound once per story, so a character keeps the same name and pronouns throughout:
//
//   {A} {A.he} {A.He} {A.him} {A.his} {A.His} {A.kind}   the hero (a child or an animal)
//   {B} ...                                              a friend, same keys
//   {P} {P.he} ...                                       a family member ("Mom", "Grandpa")
//   {place.at} {place.to} {place.thing}                  "in the park", "to the park", "the swings"
//   {toy} {thing} {things} {animal} {good} {bad} ...     bound by the plot that uses them
#include "data/story_grammar.h"

#include <algorithm>
#include <span>
#include <vector>

#include "core/error.h"
#include "data/story_lexicon.h"
#include "data/story_template.h"

namespace sllm::data {

namespace lx = lexicon;

namespace {

class Story {
 public:
  explicit Story(Rng& rng) : rng(rng) {}

  Rng& rng;
  Bindings vars;

  template <typename T>
  const T& pick(std::span<const T> xs) {
    SLLM_ASSERT(!xs.empty());
    return xs[rng.below(xs.size())];
  }
  int64_t between(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1))); }
  bool chance(double p) { return rng.uniform_double() < p; }

  // Appends one expanded sentence (or several) followed by a space.
  void say(std::string_view tmpl) {
    text_ += expand(tmpl, vars, rng);
    text_ += ' ';
  }
  // Picks one of several whole-sentence templates.
  void say_one(std::initializer_list<std::string_view> tmpls) { say(*(tmpls.begin() + rng.below(tmpls.size()))); }
  void end_paragraph() {
    while (!text_.empty() && text_.back() == ' ') text_.pop_back();
    text_ += '\n';
  }
  std::string finish() {
    while (!text_.empty() && (text_.back() == ' ' || text_.back() == '\n')) text_.pop_back();
    return capitalize_sentences(fix_articles(std::move(text_)));
  }

  void bind_character(const std::string& key, const std::string& name, bool female, const std::string& kind) {
    vars[key] = name;
    vars[key + ".he"] = female ? "she" : "he";
    vars[key + ".He"] = female ? "She" : "He";
    vars[key + ".him"] = female ? "her" : "him";
    vars[key + ".his"] = female ? "her" : "his";
    vars[key + ".His"] = female ? "Her" : "His";
    vars[key + ".kind"] = kind;
  }
  void bind_number(const std::string& key, int64_t n) {
    SLLM_ASSERT(n >= 0 && n < static_cast<int64_t>(lx::number_words().size()));
    vars[key] = lx::number_words()[n];
    vars[key + ".digits"] = std::to_string(n);
  }
  // "{things}" reads "apple" for one and "apples" otherwise.
  void bind_noun(const std::string& key, const lx::Noun& noun) {
    vars[key] = noun.one;
    vars[key + "s"] = noun.many;
  }

 private:
  std::string text_;
};

// "One, two, three and four": counting out loud, always inside a quote, so capitalised.
std::string count_aloud(int64_t n) {
  std::string out;
  for (int64_t i = 1; i <= n; ++i) {
    if (i > 1) out += (i == n) ? " and " : ", ";
    out += lx::number_words()[i];
  }
  out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

// Binds the cast: the hero A (a child or an animal), a friend B of the same sort, and a
// family member P. B never shares A's name.
void cast(Story& s) {
  const bool animals = s.chance(0.4);
  auto names = animals ? lx::animal_names() : lx::child_names();
  const lx::Name& a = s.pick(names);
  const lx::Name* b = &s.pick(names);
  while (b->name == a.name) b = &s.pick(names);
  auto kind_of = [&](const lx::Name& n) {
    std::string adjective = s.pick(lx::child_kinds());
    if (animals) return adjective + " " + s.pick(lx::animal_kinds());
    return adjective + (n.female ? " girl" : " boy");
  };
  s.bind_character("A", a.name, a.female, kind_of(a));
  s.bind_character("B", b->name, b->female, kind_of(*b));
  const std::string family = s.pick(lx::family());
  s.bind_character("P", family, family == "Mom" || family == "Grandma", "");

  const lx::Place& place = s.pick(lx::places());
  s.vars["place.at"] = place.at;
  s.vars["place.to"] = place.to;
  s.vars["place.thing"] = place.thing;
  s.vars["time"] = s.pick(lx::times_of_day());
  s.vars["color"] = s.pick(lx::colors());
  s.vars["size"] = s.pick(lx::sizes());
  s.vars["quality"] = s.pick(lx::qualities());
  s.vars["good"] = s.pick(lx::good_feelings());
  s.vars["bad"] = s.pick(lx::bad_feelings());
  const lx::Activity& act = s.pick(lx::activities());
  s.vars["act"] = act.base;
  s.vars["act.ing"] = act.ing;
  s.vars["act.past"] = act.past;
  s.bind_noun("toy", s.pick(lx::toys()));
  s.bind_noun("thing", s.pick(lx::countables()));
  s.bind_noun("animal", s.pick(lx::small_animals()));
}

// The beginning: who the hero is, and one thing about them.
void introduce(Story& s) {
  s.say_one({
      "Once upon a time, there was a {A.kind} named {A}.",
      "There once was a {A.kind} called {A}.",
      "{A} was a {A.kind} who lived [in a [small|little|cozy|yellow|blue] house|in a house with a red door] "
      "[by the river|near the forest|at the end of the road|on a quiet street|under a big oak tree].",
      "One [sunny|rainy|windy|cold|warm|quiet|bright] {time}, a {A.kind} named {A} [was playing outside|looked out of the window|ran outside].",
      "[Not long ago|Once], in a [small|sleepy|busy|green] town, lived a {A.kind}. {A.His} name was {A}.",
  });
  s.say_one({
      "{A.He} loved {act.ing}.",
      "{A.His} favorite color was {color}.",
      "{A.He} had a best friend named {B}.",
      "{A.He} lived with {P}, who [loved {A.him} very much|always had a kind word].",
      "Every day, {A.he} liked to go {place.to}.",
      "{A.He} was [always|often] [curious|cheerful|busy|full of questions].",
  });
  s.end_paragraph();
}

// The end: one closing line, sometimes followed by "The end."
void conclude(Story& s, std::initializer_list<std::string_view> lessons) {
  s.say_one(lessons);
  if (s.chance(0.25)) s.say("The end.");
}

void plot_lost_toy(Story& s) {
  introduce(s);
  s.say("{A.He} had a {quality} {toy} that {A.he} [loved very much|took everywhere|got from {P} on {A.his} birthday].");
  s.say_one({"One day, {A} went {place.to} with {A.his} {toy}.",
             "One {time}, {A} and {B} took the {toy} {place.to}.",
             "After lunch, {A} carried {A.his} {toy} {place.to} to {act}."});
  s.say("{A.He} [played|ran around|had fun] for a long time. When it was time to go home, {A} "
        "[looked in {A.his} bag|reached for {A.his} {toy}|looked around], but the {toy} was gone!");
  s.end_paragraph();
  s.say(R"("Oh no! Where is my {toy}?" [cried|said|asked] {A}. {A.He} felt very {bad}.)");
  s.say(R"({B} [ran over|came closer] and said, "Don't worry, {A}. I will help you look for it.")");
  const char* spots[] = {"under the bench", "behind a tree", "in the tall grass", "near the big rock",
                         "inside an old box", "under a pile of leaves", "by the gate"};
  const int64_t tries = s.between(1, 3);
  const int64_t first = s.between(0, 6);
  for (int64_t i = 0; i < tries; ++i) {
    s.vars["spot"] = spots[(first + i) % 7];
    s.say_one({R"(They looked {spot}. "It is not here," said {B}.)",
               "First they looked {spot}, but the {toy} was not there.",
               "{A} looked {spot}. There was nothing but [a snail|some dirt|a stick|an old sock]."});
  }
  s.end_paragraph();
  s.say("Then {A} saw something [{color}|{size}] [behind|under|next to] {place.thing}. It was {A.his} {toy}!");
  s.say_one({"The wind had blown it there.", "A playful puppy had carried it there.",
             "It had rolled away while {A.he} was {act.ing}.", "A [curious|cheeky] squirrel had hidden it there."});
  s.say(R"("Thank you, {B}!" said {A}. "You are a good friend.")");
  s.say("{A} hugged {A.his} {toy} and felt {good} again.");
  s.end_paragraph();
  conclude(s, {"From that day on, {A} always kept {A.his} {toy} close.",
               "After that, {A} was careful with {A.his} things, and {B} was {A.his} best friend.",
               "{A} learned that friends help you find what you lose."});
}

void plot_sharing(Story& s) {
  introduce(s);
  const int64_t have = s.between(2, 9), more = s.between(1, 6), sum = have + more;
  s.bind_number("n1", have);
  s.bind_number("n2", more);
  s.bind_number("sum", sum);
  s.say_one({"One {time}, {P} gave {A} {n1} {things}.", "{A} [picked|found|collected] {n1} {things} {place.at}.",
             "{A} had {n1} {things} in a [little|{color}] basket."});
  if (have <= 10) {
    s.vars["count"] = count_aloud(have);
    s.say(R"({A} counted them: "{count}.")");
  }
  s.say_one({"Then {A.he} found {n2} more. Now {A.he} had {sum} {things}.",
             "{P} gave {A.him} {n2} more, so now {A.he} had {sum} {things}.",
             "Later {A.he} got {n2} more. {n1} and {n2} make {sum}, so {A.he} had {sum} {things}."});
  if (s.chance(0.4)) s.say("{A.He} wrote it down: {n1.digits} + {n2.digits} = {sum.digits}.");
  s.end_paragraph();
  s.say_one({"Just then, {B} [walked by|came to play]. {B.He} looked {bad}, because {B.he} did not have any {things}.",
             "When {A} saw that {B} had no {things}, {A.he} felt sorry for {B.him}."});
  s.say(R"("Would you like some of my {things}?" asked {A}. "Yes, please!" said {B}.)");
  if (sum % 2 == 0 && s.chance(0.5)) {
    s.bind_number("half", sum / 2);
    s.say("{A} shared them so that each of them had {half} {things}. {half} and {half} make {sum}.");
  } else {
    const int64_t give = s.between(1, sum - 1);
    s.bind_number("give", give);
    s.bind_number("left", sum - give);
    s.vars["give.noun"] = give == 1 ? s.vars["thing"] : s.vars["things"];
    s.vars["left.noun"] = sum - give == 1 ? s.vars["thing"] : s.vars["things"];
    s.say("{A} gave {B} {give} {give.noun}. {A.He} had {left} {left.noun} left.");
    if (s.chance(0.4)) s.say("{A.He} knew that {sum.digits} - {give.digits} = {left.digits}.");
  }
  s.end_paragraph();
  conclude(s, {"{A} and {B} [sat under a tree|sat on the grass] and [looked at their {things}|put their {things} in a row]. "
               "Sharing made them both feel {good}.",
               "{B} smiled. {A} learned that sharing makes a friend happy, and that makes you happy too.",
               "That {time}, {A} and {B} played together until the sun went down."});
}

void plot_weather(Story& s) {
  struct Weather {
    const char* looks;    // what the hero sees
    const char* because;  // the cause, as a clause
    const char* thing;    // what they forget about
  };
  const Weather weathers[] = {
      {"rain was falling on the roof", "it was raining", "the rain"},
      {"the wind was bending the trees", "it was too windy", "the wind"},
      {"big gray clouds covered the sky and thunder boomed", "there was a storm", "the storm"},
      {"snow was falling and the road was white", "it was too cold and snowy", "the snow"},
  };
  const Weather& w = weathers[s.rng.below(4)];
  s.vars["w.looks"] = w.looks;
  s.vars["w.because"] = w.because;
  s.vars["w.thing"] = w.thing;
  const lx::Activity indoor[] = {{"build a blanket fort", "building blanket forts", "built a blanket fort"},
                                 {"bake cookies", "baking cookies", "baked cookies"},
                                 {"paint a picture", "painting pictures", "painted a picture"},
                                 {"play a board game", "playing board games", "played a board game"},
                                 {"make paper boats", "making paper boats", "made paper boats"},
                                 {"read a story", "reading stories", "read a story"}};
  const lx::Activity& in = indoor[s.rng.below(6)];
  s.vars["in"] = in.base;
  s.vars["in.past"] = in.past;

  introduce(s);
  s.say("{A} wanted to {act} {place.at} [today|with {B}|all day long].");
  s.say("But when {A.he} looked out of the window, {w.looks}.");
  s.say("Because {w.because}, {A} could not go outside.");
  s.say(R"({A} felt {bad}. "Now I can't {act}," {A.he} said.)");
  s.end_paragraph();
  s.say(R"({P} [sat down next to|hugged] {A.him}. "We can have fun inside," {P.he} said. "Let's {in}.")");
  s.say("So {A} and {P} {in.past}. [It was so much fun that|Soon] {A} forgot all about {w.thing}.");
  s.end_paragraph();
  conclude(s, {"The next day, the sun came out, so {A} went {place.to} and {act.past} after all.",
               "When {w.thing} stopped, {A} ran {place.to}. {A.He} was {good}, and {A.he} learned that a day inside can be fun too.",
               "{A} learned that when plans change, you can still find something fun to do."});
}

void plot_skill(Story& s) {
  s.vars["skill"] = s.pick(lx::skills());
  introduce(s);
  s.say_one({"{A} wanted to learn to {skill}. {B} could already {skill}, and {A} wanted to do it too.",
             "{A.He} really wanted to {skill}, but it was hard."});
  s.say("The first time {A} tried, {A.he} [fell down|slipped|got it wrong|could not do it]. {A.He} felt {bad}.");
  s.say(R"("Try again," said [{B}|{P}]. "[Go slowly|Keep your eyes open|Take a deep breath first|Do not give up].")");
  s.end_paragraph();
  const int64_t more = s.between(2, 6);
  s.bind_number("more", more);
  const char* ordinals[] = {"", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"};
  s.vars["ordinal"] = ordinals[more + 2];
  s.say("{A} tried a second time. It was a little better, but not quite right.");
  s.say("{A.He} tried {more} more times. On the {ordinal} try, {A.he} did it!");
  s.say(R"("I did it! I can {skill}!" [shouted|cried|laughed] {A}. {A.He} felt so {good}.)");
  s.end_paragraph();
  conclude(s, {"{A} learned that practice helps.", "{A} learned that if you keep trying, you can do hard things.",
               "That night, {A} told {P} all about it, and {P.he} was proud of {A.him}."});
}

void plot_helping_animal(Story& s) {
  struct Trouble {
    const char* is;   // "was stuck in a bush"
    const char* fix;  // what the hero does
  };
  const Trouble troubles[] = {
      {"was stuck in a thorny bush", "gently pulled the branches apart and lifted it out"},
      {"was lost and could not find its mother", "helped it look for its mother. They found her near {place.thing}"},
      {"was cold and wet", "wrapped it in {A.his} scarf and kept it warm"},
      {"was very hungry", "gave it some crumbs from {A.his} lunch"},
      {"was caught in an old net", "carefully untied the net, one knot at a time"},
  };
  const Trouble& t = troubles[s.rng.below(5)];
  s.vars["t.is"] = t.is;
  introduce(s);
  s.say("One day, {A} was walking {place.at} when {A.he} heard a [small|soft|sad|tiny] sound.");
  s.say("It was a {animal}. The poor {animal} {t.is}.");
  s.say(R"("Poor little {animal}," said {A}. "I will help you.")");
  s.end_paragraph();
  s.say(std::string("{A} ") + t.fix + ".");
  s.say("Soon the {animal} felt better. It [looked at {A} with happy eyes|wiggled and made a happy sound|stayed close to {A}].");
  s.end_paragraph();
  conclude(s, {"Every day after that, the {animal} came to visit {A}. They became the best of friends.",
               "{A} was {good} that {A.he} had helped. When you are kind, the world gets a little better.",
               "When {A} told {P} what happened, {P.he} said, \"You have a kind heart, {A}.\""});
}

void plot_baking(Story& s) {
  const int64_t eggs = s.between(2, 6), cups = s.between(1, 4), age = s.between(3, 10), minutes = s.between(2, 6) * 10;
  s.bind_number("eggs", eggs);
  s.bind_number("eggs.less", eggs - 1);
  s.bind_number("cups", cups);
  s.bind_number("age", age);
  s.vars["minutes"] = minutes == 20 ? "twenty" : std::to_string(minutes);
  s.vars["eggs.count"] = count_aloud(eggs);
  s.vars["cup.noun"] = cups == 1 ? "cup" : "cups";
  introduce(s);
  s.say("{A} and {P} wanted to bake a cake for {B}, because it was {B}'s birthday.");
  s.say("They needed {eggs} eggs, {cups} {cup.noun} of flour and some sugar.");
  s.say(R"({A} put the eggs in the bowl one by one: "{eggs.count}.")");
  s.end_paragraph();
  if (s.chance(0.5)) {
    s.say("But then {A} dropped an egg on the floor! Now there were only {eggs.less} eggs in the bowl.");
    s.say(R"({A} felt {bad}. "It's all right," said {P}. "There is one more egg in the box.")");
  } else {
    s.say("{A} mixed it all together with a big spoon until it was smooth.");
  }
  s.say("The cake went into the oven, and they waited for {minutes} minutes. When it came out, it smelled [sweet|wonderful|so good].");
  s.end_paragraph();
  s.say("{B} was {age} years old, so they put {age} candles on the cake.");
  s.say(R"("Make a wish!" said {A}. {B} blew out all {age} candles at once.)");
  conclude(s, {"Everyone ate a piece of cake, and {B} said it was the best birthday ever.",
               "{B} gave {A} a big hug. {A} was {good} that {A.he} had helped to make the cake.",
               "It was a sweet day, and {A} learned that the best gifts are made with love."});
}

void plot_fear(Story& s) {
  s.vars["fear"] = s.pick(lx::fears());
  introduce(s);
  s.say("{A} was afraid of {fear}. Every time {A.he} thought about {fear}, {A.his} [heart beat fast|knees shook|tummy felt funny].");
  s.say(R"(One {time}, {P} asked, "Why are you [so quiet|scared], {A}?")");
  s.say(R"("Because of {fear}," said {A}. "It makes me feel [small|scared|{bad}].")");
  s.end_paragraph();
  s.say(R"({P} held {A.his} hand. "Let's look at it together," {P.he} said.)");
  s.say("So they went to see {fear} together. [It was not so scary after all.|Up close, it was not scary at all.]");
  s.say(R"({A} [smiled|laughed] and said, "I am not scared anymore!")");
  s.end_paragraph();
  conclude(s, {"{A} learned that things are less scary when you face them with someone you love.",
               "From then on, {A} felt brave, and {A.he} even helped {B} when {B.he} was scared.",
               "That night {A} slept well, because {A.he} was not afraid anymore."});
}

void plot_market(Story& s) {
  const int64_t cost = s.between(1, 3), buy = s.between(2, 4), spent = cost * buy, extra = s.between(0, 5);
  const int64_t coins = spent + extra;
  s.bind_number("coins", coins);
  s.bind_number("cost", cost);
  s.bind_number("buy", buy);
  s.bind_number("spent", spent);
  s.bind_number("extra", extra);
  s.vars["cost.noun"] = cost == 1 ? "coin" : "coins";
  s.vars["extra.noun"] = extra == 1 ? "coin" : "coins";
  introduce(s);
  s.say(R"({P} gave {A} {coins} coins and said, "You can buy something at the market.")");
  s.say("{A} went to the market with {B}. There were [apples, pears and bananas|cakes, bread and honey|flowers, hats and toys].");
  s.end_paragraph();
  s.say("One {thing} cost {cost} {cost.noun}. {A} wanted {buy} {things}, so {A.he} paid {spent} coins.");
  if (extra == 0) {
    s.say("Now {A.he} had no coins left, but {A.he} did not mind.");
  } else {
    s.say("{A.He} had {extra} {extra.noun} left, because {coins} take away {spent} is {extra}.");
  }
  s.say("{A} gave one of the {things} to {B}. [{B} said, \"Thank you!\"|{B} smiled a big smile.]");
  s.end_paragraph();
  conclude(s, {"On the way home, {A} and {B} [sang a song|talked and laughed|counted the birds]. It was a good day.",
               "When {A} got home, {A.he} told {P} what {A.he} had bought. {P} said {A.he} had counted very well.",
               "{A} learned that it is fun to buy something for a friend."});
}

void plot_hide_and_seek(Story& s) {
  const int64_t to = s.between(5, 10);
  s.vars["count"] = count_aloud(to);
  introduce(s);
  s.say("One {time}, {A} and {B} played hide and seek {place.at}.");
  s.say(R"({B} closed {B.his} eyes and counted: "{count}! Ready or not, here I come!")");
  s.say("{A} hid [behind {place.thing}|under a big leaf|inside an empty box|behind a {color} door].");
  s.end_paragraph();
  s.say("{B} looked [here and there|everywhere|up and down], but {B.he} could not find {A}.");
  s.say_one({"Then {A} sneezed! {B} found {A.him} right away, and they both laughed.",
             "{A} stayed very still. At last {B} said, \"I give up!\" and {A} jumped out.",
             "{A} giggled, and {B} heard {A.him}. \"Found you!\" {B.he} said."});
  s.end_paragraph();
  conclude(s, {"Then it was {A}'s turn to count. They played until {P} called them home.",
               "They played three more times, and each time {A} found a better place to hide.",
               "When they were tired, they sat down and shared a snack. It was a {good} {time}."});
}

void plot_day_trip(Story& s) {
  const lx::Activity& second = s.pick(lx::activities());
  s.vars["act2.past"] = second.past;
  const int64_t seen = s.between(2, 12);
  s.bind_number("seen", seen);
  s.vars["animal.seen"] = seen == 1 ? s.vars["animal"] : s.vars["animals"];
  introduce(s);
  s.say("One {time}, {A} went {place.to} with {P}.");
  s.say("First, they {act.past}. Then they {act2.past}.");
  s.say("After that, {A} saw {seen} {animal.seen} near {place.thing}.");
  s.end_paragraph();
  s.say_one({R"("Look, {P}!" said {A}. "There are {seen} of them!")",
             R"({A} counted them twice to be sure. "{seen}!" {A.he} said.)"});
  s.say("When the sun began to set, they walked home, because it was getting dark.");
  s.end_paragraph();
  conclude(s, {"{A} was tired but {good}. It had been a wonderful day.",
               "That night, {A} told {B} all about the trip. {B} wanted to come next time.",
               "{A} went to bed early and dreamed about {place.thing}."});
}

}  // namespace

std::string generate_story(Rng& rng) {
  Story s(rng);
  cast(s);
  using Plot = void (*)(Story&);
  static constexpr Plot plots[] = {plot_lost_toy, plot_sharing,     plot_weather,        plot_skill,  plot_helping_animal,
                                   plot_baking,   plot_fear,        plot_market,         plot_hide_and_seek, plot_day_trip};
  plots[rng.below(std::size(plots))](s);
  return s.finish();
}

}  // namespace sllm::data

#include "data/story_lexicon.h"

namespace sllm::data::lexicon {

namespace {

constexpr Name kChildNames[] = {
    {"Lily", true},   {"Tom", false},   {"Mia", true},    {"Ben", false},  {"Anna", true},  {"Sam", false},
    {"Zoe", true},    {"Max", false},   {"Emma", true},   {"Leo", false},  {"Lucy", true},  {"Jack", false},
    {"Ella", true},   {"Noah", false},  {"Ruby", true},   {"Finn", false}, {"Sara", true},  {"Owen", false},
    {"Nora", true},   {"Eli", false},   {"Maya", true},   {"Theo", false}, {"Ivy", true},   {"Luke", false},
    {"Rosa", true},   {"Omar", false},  {"Hana", true},   {"Kai", false},  {"Alice", true}, {"Dan", false},
    {"Grace", true},  {"Hugo", false},  {"Jade", true},   {"Ravi", false}, {"Tara", true},  {"Milo", false},
    {"Amy", true},    {"Paul", false},  {"Nina", true},   {"Adam", false}, {"Kate", true},  {"Joe", false},
};

constexpr Name kAnimalNames[] = {
    {"Pip", false},    {"Daisy", true},  {"Bubbles", true}, {"Rusty", false}, {"Coco", true},   {"Buddy", false},
    {"Hazel", true},   {"Pepper", true}, {"Biscuit", false}, {"Sunny", true}, {"Ziggy", false}, {"Clover", true},
    {"Fluffy", true},  {"Patch", false}, {"Button", true},  {"Scout", false}, {"Willow", true}, {"Bruno", false},
};

constexpr const char* kAnimalKinds[] = {"rabbit", "fox",  "bear",     "cat",  "dog",   "mouse", "duck",
                                        "frog",   "owl",  "squirrel", "pig",  "lamb",  "hedgehog", "turtle",
                                        "puppy",  "kitten", "bunny",  "goat", "deer",  "beaver"};

constexpr const char* kChildKinds[] = {"little", "small", "young", "happy", "curious", "kind", "clever", "busy", "cheerful"};

constexpr const char* kColors[] = {"red", "blue", "green", "yellow", "purple", "orange", "pink", "white", "brown", "black", "golden", "silver"};
constexpr const char* kSizes[] = {"big", "small", "tiny", "huge", "little", "tall", "long", "round"};
constexpr const char* kQualities[] = {"shiny", "soft", "new", "old", "pretty", "bright", "smooth", "fuzzy", "heavy", "light", "funny", "special"};

constexpr Noun kCountables[] = {
    {"apple", "apples"},   {"cookie", "cookies"}, {"berry", "berries"},   {"shell", "shells"},     {"stone", "stones"},
    {"flower", "flowers"}, {"egg", "eggs"},       {"carrot", "carrots"},  {"cupcake", "cupcakes"}, {"marble", "marbles"},
    {"sticker", "stickers"}, {"pencil", "pencils"}, {"button", "buttons"}, {"leaf", "leaves"},     {"acorn", "acorns"},
    {"orange", "oranges"}, {"cherry", "cherries"}, {"balloon", "balloons"}, {"star", "stars"},     {"block", "blocks"},
    {"candy", "candies"},  {"banana", "bananas"}, {"crayon", "crayons"},  {"pear", "pears"},       {"feather", "feathers"},
};

constexpr Noun kToys[] = {
    {"ball", "balls"},       {"kite", "kites"},   {"teddy bear", "teddy bears"}, {"toy car", "toy cars"}, {"doll", "dolls"},
    {"red hat", "red hats"}, {"boat", "boats"},   {"drum", "drums"},             {"book", "books"},       {"scarf", "scarves"},
    {"robot", "robots"},     {"puzzle", "puzzles"}, {"yo-yo", "yo-yos"},         {"whistle", "whistles"}, {"map", "maps"},
    {"lunch box", "lunch boxes"}, {"blanket", "blankets"}, {"key", "keys"},      {"train", "trains"},     {"bucket", "buckets"},
};

constexpr Noun kSmallAnimals[] = {
    {"bird", "birds"}, {"kitten", "kittens"}, {"puppy", "puppies"}, {"duckling", "ducklings"}, {"snail", "snails"},
    {"butterfly", "butterflies"}, {"ladybug", "ladybugs"}, {"baby owl", "baby owls"}, {"frog", "frogs"}, {"little fish", "little fish"},
};

constexpr Place kPlaces[] = {
    {"in the park", "to the park", "the swings"},          {"at the beach", "to the beach", "the waves"},
    {"in the forest", "into the forest", "the tall trees"}, {"on the farm", "to the farm", "the red barn"},
    {"by the river", "down to the river", "the old bridge"}, {"on the hill", "up the hill", "the windmill"},
    {"in the garden", "out to the garden", "the rose bushes"}, {"at school", "to school", "the sandbox"},
    {"in the kitchen", "into the kitchen", "the big table"}, {"at the market", "to the market", "the fruit stand"},
    {"in the meadow", "to the meadow", "the wild flowers"},  {"by the lake", "to the lake", "the little dock"},
    {"in the library", "to the library", "the tall shelves"}, {"at the zoo", "to the zoo", "the monkeys"},
    {"near the pond", "to the pond", "the ducks"},          {"in the backyard", "out to the backyard", "the tree house"},
    {"at the playground", "to the playground", "the slide"}, {"in the village", "to the village", "the bakery"},
    {"at the station", "to the station", "the trains"},     {"in the snowy woods", "into the snowy woods", "the frozen creek"},
};

constexpr Activity kActivities[] = {
    {"play tag", "playing tag", "played tag"},
    {"jump rope", "jumping rope", "jumped rope"},
    {"build a sandcastle", "building sandcastles", "built a sandcastle"},
    {"read a book", "reading books", "read a book"},
    {"paint a picture", "painting pictures", "painted a picture"},
    {"sing songs", "singing songs", "sang songs"},
    {"dance", "dancing", "danced"},
    {"climb a tree", "climbing trees", "climbed a tree"},
    {"ride a bike", "riding bikes", "rode a bike"},
    {"bake cookies", "baking cookies", "baked cookies"},
    {"plant seeds", "planting seeds", "planted seeds"},
    {"pick berries", "picking berries", "picked berries"},
    {"feed the ducks", "feeding the ducks", "fed the ducks"},
    {"draw with chalk", "drawing with chalk", "drew with chalk"},
    {"play hide and seek", "playing hide and seek", "played hide and seek"},
    {"splash in puddles", "splashing in puddles", "splashed in puddles"},
    {"build a tower of blocks", "building towers of blocks", "built a tower of blocks"},
    {"make a snowman", "making snowmen", "made a snowman"},
    {"look for bugs", "looking for bugs", "looked for bugs"},
    {"play the drum", "playing the drum", "played the drum"},
};

constexpr const char* kGoodFeelings[] = {"happy", "glad", "proud", "excited", "calm", "cheerful", "thankful", "joyful"};
constexpr const char* kBadFeelings[] = {"sad", "scared", "grumpy", "worried", "lonely", "upset", "angry", "nervous"};
constexpr const char* kFears[] = {"the dark", "the big dog next door", "thunder", "the deep water", "the tall slide",
                                  "the old attic", "the loud vacuum", "bees", "the noisy wind", "the shadows on the wall"};
constexpr const char* kSkills[] = {"ride a bike", "tie a shoe", "swim", "whistle", "skip a stone", "read a long word",
                                   "jump over the puddle", "catch a ball", "fly a kite", "climb the rope", "count to twenty",
                                   "write a letter"};
constexpr const char* kNumberWords[] = {"zero",   "one",    "two",      "three",    "four",    "five",    "six",
                                        "seven",  "eight",  "nine",     "ten",      "eleven",  "twelve",  "thirteen",
                                        "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};
constexpr const char* kFamily[] = {"Mom", "Dad", "Grandma", "Grandpa"};
constexpr const char* kTimesOfDay[] = {"morning", "afternoon", "evening", "day"};

}  // namespace

std::span<const Name> child_names() { return kChildNames; }
std::span<const Name> animal_names() { return kAnimalNames; }
std::span<const char* const> animal_kinds() { return kAnimalKinds; }
std::span<const char* const> child_kinds() { return kChildKinds; }
std::span<const char* const> colors() { return kColors; }
std::span<const char* const> sizes() { return kSizes; }
std::span<const char* const> qualities() { return kQualities; }
std::span<const Noun> countables() { return kCountables; }
std::span<const Noun> toys() { return kToys; }
std::span<const Noun> small_animals() { return kSmallAnimals; }
std::span<const Place> places() { return kPlaces; }
std::span<const Activity> activities() { return kActivities; }
std::span<const char* const> good_feelings() { return kGoodFeelings; }
std::span<const char* const> bad_feelings() { return kBadFeelings; }
std::span<const char* const> fears() { return kFears; }
std::span<const char* const> skills() { return kSkills; }
std::span<const char* const> number_words() { return kNumberWords; }
std::span<const char* const> family() { return kFamily; }
std::span<const char* const> times_of_day() { return kTimesOfDay; }

}  // namespace sllm::data::lexicon

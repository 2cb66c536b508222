// Placeholder translation unit for a layer whose folder has no sources yet.
namespace { [[maybe_unused]] int empty_layer_anchor = 0; }

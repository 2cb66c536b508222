// A fresh temporary directory per test, removed afterwards.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace sllm::data::testing {

inline std::string fresh_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    (std::string("sllm_test_data_") + info->test_suite_name() + "_" + info->name() +
                                     "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

struct TempDir {
  std::string path = fresh_dir();
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace sllm::data::testing

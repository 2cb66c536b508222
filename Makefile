# Thin wrapper over CMake. `make` builds build/sllm; `make test` builds and runs every CPU test.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure test bench demo clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash tools/install_deps.sh

configure: deps
	@if [ ! -f $(BUILD)/CMakeCache.txt ]; then cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS); fi

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: all
	$(BUILD)/sllm bench gemm --threads 1
	$(BUILD)/sllm bench gemm --threads $(JOBS)
	$(BUILD)/sllm bench tokenizer
	$(BUILD)/sllm bench train --config small --steps 5

demo: all
	bash tools/demo.sh

clean:
	rm -rf $(BUILD)

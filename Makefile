# Thin wrapper over CMake. `make` builds build/sllm; `make test` builds and runs every test
# (the CPU tests, and the CUDA tests on the CPU through the simulator).
BUILD ?= build
SIM_BUILD ?= build-sim
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure binary test sim-test bench demo demo-sft demo-rlhf smollm2 gpu-check clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash tools/install_deps.sh

configure: deps
	@if [ ! -f $(BUILD)/CMakeCache.txt ]; then cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS); fi

# Only the CLI binary (no tests, no CUDA library): what `make demo` needs.
binary: configure
	cmake --build $(BUILD) -j $(JOBS) --target sllm

test: all sim-test
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Every CUDA test (tests/cuda) run on the CPU by the simulator (kernels/cuda_sim): the
# .cu kernels compiled as C++, each block's threads as fibers. No GPU or nvcc needed.
# Then the `--device cuda` command-line paths end to end on the same simulated GPU.
sim-test: deps
	@if [ ! -f $(SIM_BUILD)/CMakeCache.txt ]; then cmake -S . -B $(SIM_BUILD) -DCMAKE_BUILD_TYPE=Release -DSLLM_CUDA=SIM $(CMAKE_FLAGS); fi
	cmake --build $(SIM_BUILD) -j $(JOBS) --target test_cuda sllm
	$(SIM_BUILD)/tests/test_cuda --gtest_brief=1
	bash tests/cuda/run_cli_on_sim.sh $(SIM_BUILD)/sllm

# Every benchmark, side by side on this machine: bench gemm's header names the SIMD path and
# the FMA peak, its rows our SGEMM vs OpenBLAS (when libopenblas.so.0 is there) and % of peak;
# then the tokenizer, a training step, and the training ratio against PyTorch when a python3
# imports torch. Only sllm failing fails the target: the PyTorch side is optional.
TORCH_PYTHONS ?= python3 /usr/bin/python3
bench: binary
	$(BUILD)/sllm bench gemm --threads 1 $(JOBS)
	$(BUILD)/sllm bench tokenizer
	$(BUILD)/sllm bench train --config small --steps 5
	@py=""; for p in $(TORCH_PYTHONS); do \
	  if $$p -c 'import torch' >/dev/null 2>&1; then py=$$p; break; fi; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "sllm vs PyTorch training: skipped, no python3 here imports torch (tried: $(TORCH_PYTHONS))"; \
	else \
	  echo "$$py tools/bench_vs_pytorch.py --sllm $(BUILD)/sllm --threads 1 $(JOBS) --rounds 1 --steps 5"; \
	  $$py tools/bench_vs_pytorch.py --sllm $(BUILD)/sllm --threads 1 $(JOBS) --rounds 1 --steps 5 || \
	    echo "sllm vs PyTorch training: tools/bench_vs_pytorch.py failed (above); sllm's own figures are before it"; \
	fi

demo: binary
	SLLM=$(BUILD)/sllm bash tools/demo.sh

# Prompting vs fine-tuning on the story-QA set, from the demo's pretrained model (trained
# first when runs/demo is missing): zero-shot, few-shot, full and LoRA (tools/demo_sft.sh).
demo-sft: binary
	SLLM=$(BUILD)/sllm bash tools/demo_sft.sh

# RLHF on a verifiable preference, from the demo-sft model (made first when runs/demo-sft is
# missing): reward model, PPO, DPO and GRPO, held-out pass rates (tools/demo_rlhf.sh).
demo-rlhf: binary
	SLLM=$(BUILD)/sllm bash tools/demo_rlhf.sh

# SmolLM2-135M-Instruct as GGUF into data/models/, sha256-checked: the one place a real model
# comes from (tools/fetch_model.sh).
smollm2:
	bash tools/fetch_model.sh smollm2-135m-instruct

# The one-command GPU run of issue 5 on an NVIDIA machine: its own build-cuda folder, CUDA
# tests, fp32/bf16 training benches, PyTorch side by side, summary (tools/gpu_check.sh).
gpu-check:
	bash tools/gpu_check.sh

clean:
	rm -rf $(BUILD) $(SIM_BUILD)

#!/usr/bin/env bash
# The one-command GPU run of issues 5 and 15 (`make gpu-check`), for a fresh NVIDIA machine
# holding this repository: build with CUDA, run every CUDA test against the CPU references,
# time a training step of two models, GPT-2 124M (preset gpt2-124m, fp32 and bf16) and the
# SmolLM2-135M shape (preset smollm2-135m, Llama family: GQA, RoPE, SwiGLU; bf16), compare each
# with PyTorch on the same GPU, run the rest of the test suite, and end with one summary block.
#
#   1. configure build-cuda (-DSLLM_CUDA=ON, Release; nvcc from PATH or /usr/local/cuda/bin;
#      SLLM_CUDA_ARCHS = the GPU's compute capability, so nvcc builds one architecture) and
#      build everything; a build error stops here (exit 1).
#   2. tests/test_cuda, with its GoogleTest JSON report.
#   3. sllm bench train --device cuda --batch 8 --seq 1024 --steps $GPU_CHECK_STEPS --json:
#      gpt2-124m with --precision fp32 and bf16, smollm2-135m with bf16 (an sllm without that
#      preset gets the same shape as a config.json).
#   4. the same in bf16 once more per model with --profile (3 timed steps): GPU time per
#      kernel, the tables in gpu_check.log, the heaviest rows in the summary.
#   5. tools/bench_vs_pytorch_gpu.py per model (bf16, or fp32 on a tree without --precision):
#      sllm against the same model written in PyTorch, eager (bf16 autocast, SDPA, fused
#      AdamW) and torch.compile (its first round only, when the time budget allows), and for
#      smollm2-135m also HF transformers' LlamaForCausalLM eager (when transformers imports);
#      when python3 has torch with CUDA. Ratios ours/PyTorch eager, ours/torch.compile, ours/HF.
#   6. ctest of build-cuda without test_cuda's tests (they ran in step 2).
# The summary shows per model: sllm tokens/s, ms/step and MFU (6 * params * tokens/s / 989e12,
# as `sllm bench train` computes it), the PyTorch columns with the ratios, the top kernels.
# A failing test does not stop the benches; it is reported and the exit status is 1.
# Without a visible GPU everything that can run still runs, the summary says so, and the
# exit status is 3: such a run is never a GPU result.
#
# Results go to $OUT (the device runner's folder; default build-cuda/gpu-results, ignored
# by git). At most 6 small files, since the runner returns at most 8: gpu_check.log (all the
# console output), build.log (when it builds), test_cuda.json, bench.json (every bench's JSON
# line by model and precision), vs_pytorch.json (bench_vs_pytorch_gpu.py's JSON by model,
# rewritten after every run), summary.txt.
#
# With prebuilt binaries (the usual device run; about 5-6 minutes on an H200, within the
# default budget of 480 s):
#   GPU_CHECK_SKIP_BUILD=1 GPU_CHECK_BUILD_DIR=<folder with sllm and tests/test_cuda> \
#     GPU_CHECK_CTEST=0 bash tools/gpu_check.sh
#
# The C++ build needs GoogleTest, nlohmann-json and ICU's headers (tools/install_deps.sh).
# A machine without them that cannot download (such as the lent GPU machines) takes their
# Debian packages from .deps/debs: run `tools/gpu_check.sh --fetch-deps` where apt works,
# carry .deps, and this script unpacks them into /tmp/sllm-deps (never into /); prebuilt
# binaries whose shared libraries (ICU) are missing here get the same treatment.
#
# Knobs (environment): GPU_CHECK_BUILD_DIR (default build-cuda), GPU_CHECK_SKIP_BUILD=1 (use
# the build folder as it is: prebuilt binaries, dry runs), GPU_CHECK_STEPS (timed steps per
# bench, default 20), GPU_CHECK_ROUNDS (PyTorch comparison rounds, default 2),
# GPU_CHECK_COMPILE=0 (no torch.compile column), GPU_CHECK_HF=0 (no HF transformers column),
# GPU_CHECK_PROFILE=0 (no profile runs), GPU_CHECK_CTEST=0 (skip step 6), GPU_CHECK_MODELS
# (default "gpt2-124m smollm2-135m"), GPU_CHECK_PYTHON (the Python with torch, default
# python3), GPU_CHECK_BUDGET_S (wall-time budget that the optional steps respect, default 480),
# SLLM_CUDA_ARCHS, JOBS (default nproc).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
DEPS_DIR="$ROOT/.deps/debs"
DEPS_PREFIX=/tmp/sllm-deps
DEPS_PACKAGES=(libgtest-dev nlohmann-json3-dev libicu-dev libicu72)

if [ "${1:-}" = "--fetch-deps" ]; then
  # The .deb files only (no install, no dependencies resolved beyond this list): what the
  # build reads from them is headers, static GoogleTest, ICU's shared library and CMake files.
  mkdir -p "$DEPS_DIR" && cd "$DEPS_DIR" && apt-get download "${DEPS_PACKAGES[@]}" || exit 1
  echo "gpu_check: the .deb files are in $DEPS_DIR; carry .deps to the GPU machine"
  echo "---> HINT: keep it out of git with: echo /.deps/ >> $(git rev-parse --git-path info/exclude)"
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: tools/gpu_check.sh [--fetch-deps]   (knobs: see the top of this file)" >&2
  exit 2
fi

BUILD=${GPU_CHECK_BUILD_DIR:-build-cuda}
OUTDIR=${OUT:-$BUILD/gpu-results}
STEPS=${GPU_CHECK_STEPS:-20}
ROUNDS=${GPU_CHECK_ROUNDS:-2}
BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
PYTHON=${GPU_CHECK_PYTHON:-python3}
read -r -a MODELS <<<"${GPU_CHECK_MODELS:-gpt2-124m smollm2-135m}"
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd) || exit 1
# Intermediate files (bench JSON lines, profile tables): merged into $OUTDIR's few files.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
SLLM="$BUILD/sllm"
TEST_CUDA="$BUILD/tests/test_cuda"
BATCH=8
SEQ=1024
PROFILE_STEPS=3

# Filled in by the steps, read by the summary; per model (and precision) where it says so.
HAVE_GPU=0
GPU_DESC="none detected"
FAILURES=()
TESTS_LINE="not run"
CTEST_LINE="not run"
BENCH_HELP=""
TORCH_WHY=""  # why python has no usable torch; empty until asked, "ok" when it has
declare -A BENCH_LINE=()    # ["gpt2-124m bf16"]
declare -A PROFILE_LINE=()  # ["gpt2-124m"]
declare -A PROFILE_TOP=()
declare -A VS_LINES=()

section() { printf '\n==== %s (%ds) ====\n' "$1" "$SECONDS"; }
left_s() { echo $((BUDGET_S - SECONDS)); }
precisions_of() { if [ "$1" = gpt2-124m ]; then echo "fp32 bf16"; else echo bf16; fi; }

# Prints one field of a one-line JSON file, or nothing.
json_field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null; }

# merge_json FILE SRC KEY [KEY2]: FILE[KEY][KEY2] (or FILE[KEY]) = the JSON in SRC; one file
# per kind of result, since the runner returns few files.
merge_json() {
  python3 - "$@" <<'PY'
import json, os, sys
path, src, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    d = json.load(open(path))
except (OSError, ValueError):
    d = {}
node = d
for k in keys[:-1]:
    node = node.setdefault(k, {})
node[keys[-1]] = json.load(open(src))
with open(path + ".tmp", "w") as f:
    json.dump(d, f, indent=1)
    f.write("\n")
os.replace(path + ".tmp", path)
PY
}

# What sllm gets as --config for a model: the preset, or for an sllm from before the
# smollm2-135m preset the same shape as a config.json (shared/measurements/h200-2026-12-04).
sllm_config() {
  if [ "$1" = smollm2-135m ] && ! grep -q -a -F smollm2-135m "$SLLM" 2>/dev/null; then
    cat >"$WORK/smollm2_135m_config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152, "max_position_embeddings": 2048,
 "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
 "num_key_value_heads": 3, "hidden_act": "silu", "rms_norm_eps": 1e-05, "rope_theta": 100000.0,
 "attention_bias": false, "mlp_bias": false, "tie_word_embeddings": true, "torch_dtype": "float32"}
JSON
    echo "$WORK/smollm2_135m_config.json"
  else
    echo "$1"
  fi
}

detect_gpu() {
  section "machine"
  echo "host: $(uname -srm), $(nproc) cores; repo at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  if ! command -v nvidia-smi >/dev/null; then
    echo "NO GPU: nvidia-smi is not on PATH (no NVIDIA driver here)"
    return
  fi
  local q
  if ! q=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1) || [ -z "$q" ]; then
    echo "NO GPU: nvidia-smi found no usable GPU: $q"
    return
  fi
  HAVE_GPU=1
  GPU_DESC=$(echo "$q" | head -1)
  echo "GPU: $q"
  nvidia-smi
  if [ -z "${SLLM_CUDA_ARCHS:-}" ]; then
    # "9.0" -> "90": build for this GPU only (the default "80;90" doubles nvcc's work).
    SLLM_CUDA_ARCHS=$(echo "$GPU_DESC" | awk -F', *' '{ gsub(/\./, "", $4); print $4 }')
  fi
}

# The carried .deb files, unpacked under $DEPS_PREFIX (never into /), on the search paths.
unpack_debs() {
  echo "gpu_check: unpacking the carried packages of $DEPS_DIR into $DEPS_PREFIX"
  mkdir -p "$DEPS_PREFIX"
  local deb
  for deb in "$DEPS_DIR"/*.deb; do echo "  $(basename "$deb")"; dpkg-deb -x "$deb" "$DEPS_PREFIX" || return 1; done
  export CMAKE_PREFIX_PATH="$DEPS_PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  EXTRA_CMAKE=(-DICU_ROOT="$DEPS_PREFIX/usr")
}

# GoogleTest, nlohmann-json and ICU headers: from the system, else from carried .deb files.
ensure_deps() {
  if [ -f /usr/include/nlohmann/json.hpp ] && [ -f /usr/include/gtest/gtest.h ] && [ -f /usr/include/unicode/uchar.h ]; then
    return 0
  fi
  if ! ls "$DEPS_DIR"/*.deb >/dev/null 2>&1; then
    # They may live elsewhere (/usr/local, a conda prefix): CMake has the last word.
    echo "gpu_check: GoogleTest, nlohmann-json or ICU headers are not in /usr/include and $DEPS_DIR holds no .deb files"
    echo "---> HINT: if CMake cannot find them: install them (tools/install_deps.sh), or run 'tools/gpu_check.sh --fetch-deps' on a machine with apt and carry .deps here"
    return 0
  fi
  unpack_debs
}

# Prebuilt binaries: their shared libraries (ICU) from the system, LD_LIBRARY_PATH, or the
# carried .deb files.
ensure_runtime_libs() {
  local missing
  missing=$(ldd "$SLLM" 2>/dev/null | grep "not found")
  [ -z "$missing" ] && return 0
  echo "gpu_check: $SLLM misses shared libraries:"
  echo "$missing"
  if ls "$DEPS_DIR"/*.deb >/dev/null 2>&1; then
    unpack_debs
    missing=$(ldd "$SLLM" 2>/dev/null | grep "not found")
    [ -z "$missing" ] && { echo "gpu_check: found them in the carried packages"; return 0; }
    echo "gpu_check: still missing: $missing"
  fi
  echo "---> HINT: put them on LD_LIBRARY_PATH, or run 'tools/gpu_check.sh --fetch-deps' where apt works and carry .deps here"
}

build() {
  section "build ($BUILD, -j$JOBS)"
  if [ "${GPU_CHECK_SKIP_BUILD:-0}" = 1 ]; then
    echo "GPU_CHECK_SKIP_BUILD=1: using $BUILD as it is"
    [ -x "$SLLM" ] || { echo "gpu_check: $SLLM does not exist"; return 1; }
    EXTRA_CMAKE=()
    ensure_runtime_libs
    return 0
  fi
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
  command -v nvcc >/dev/null || { echo "gpu_check: nvcc not found on PATH or in /usr/local/cuda/bin ---> HINT: install the CUDA toolkit"; return 1; }
  echo "nvcc: $(nvcc --version | tail -1); cmake: $(cmake --version | head -1); archs: ${SLLM_CUDA_ARCHS:-CMake cache default}"
  EXTRA_CMAKE=()
  ensure_deps || return 1
  local generator=()
  # Ninja when the folder is new (an existing folder keeps its generator).
  if [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
  local archs=()
  [ -n "${SLLM_CUDA_ARCHS:-}" ] && archs=(-DSLLM_CUDA_ARCHS="$SLLM_CUDA_ARCHS")
  local t0=$SECONDS
  if ! { cmake -S . -B "$BUILD" "${generator[@]}" -DSLLM_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
           -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" "${archs[@]}" "${EXTRA_CMAKE[@]}" &&
         cmake --build "$BUILD" -j "$JOBS"; } >"$OUTDIR/build.log" 2>&1; then
    echo "BUILD FAILED (the end of $OUTDIR/build.log):"
    grep -n -m 20 -E "error:|CMake Error|undefined reference" "$OUTDIR/build.log"
    tail -n 40 "$OUTDIR/build.log"
    if grep -q -E "Could NOT find|Could not find a package" "$OUTDIR/build.log"; then
      echo "---> HINT: a library is missing: tools/install_deps.sh, or 'tools/gpu_check.sh --fetch-deps' where apt works and carry .deps here"
    fi
    return 1
  fi
  echo "built in $((SECONDS - t0)) s ($(grep -c -i warning "$OUTDIR/build.log") warning lines in build.log)"
}

run_test_cuda() {
  section "test_cuda"
  local report="$OUTDIR/test_cuda.json"
  rm -f "$report"
  if [ ! -x "$TEST_CUDA" ]; then
    TESTS_LINE="test_cuda not built ($TEST_CUDA missing)"
    echo "$TESTS_LINE"
    FAILURES+=("test_cuda missing")
    return
  fi
  timeout 240 "$TEST_CUDA" --gtest_output="json:$report"
  local rc=$?
  if [ ! -f "$report" ]; then
    TESTS_LINE="test_cuda died (exit $rc) before writing its report"
    echo "$TESTS_LINE"
    FAILURES+=("test_cuda crashed")
    return
  fi
  # gtest's JSON: per test "result" COMPLETED or SKIPPED, a "failures" list when it failed.
  TESTS_LINE=$(python3 - "$report" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
cases = [t for s in r.get("testsuites", []) for t in s.get("testsuite", [])]
failed = [f'{t["classname"]}.{t["name"]}' for t in cases if t.get("failures")]
skipped = [t for t in cases if t.get("result") == "SKIPPED" and not t.get("failures")]
# Tests named WithoutAGpu* cover GPU-less machines and skip, by design, where a GPU is seen.
by_design = [t for t in skipped if t["name"].startswith("WithoutAGpu")]
passed = len(cases) - len(failed) - len(skipped)
line = f"{passed} passed, {len(failed)} failed, {len(skipped) - len(by_design)} skipped (of {len(cases)}"
line += f"; {len(by_design)} no-GPU tests skipped by design)" if by_design else ")"
print(line + ("; failed: " + " ".join(failed[:8]) + (" ..." if len(failed) > 8 else "") if failed else ""))
EOF
)
  if [ "$rc" -ne 0 ]; then FAILURES+=("test_cuda exit $rc"); fi
  # On a GPU machine a skipped CUDA test means the tests did not see the GPU that nvidia-smi sees.
  if [ "$HAVE_GPU" = 1 ] && [[ "$TESTS_LINE" != *", 0 skipped"* ]]; then FAILURES+=("test_cuda skipped tests on a GPU"); fi
  echo "test_cuda: $TESTS_LINE"
}

# A tree from before mixed precision has no --precision: there fp32 is the only path.
has_flag() { [[ "$BENCH_HELP" == *"$1"* ]]; }

run_bench() {
  local model=$1 precision=$2 key="$1 $2" json="$WORK/bench_$1_$2.json"
  section "bench train $model, $precision"
  local cmd=("$SLLM" bench train --config "$(sllm_config "$model")" --device cuda --batch "$BATCH" --seq "$SEQ"
             --steps "$STEPS" --json)
  if has_flag --precision; then
    cmd+=(--precision "$precision")
  elif [ "$precision" != fp32 ]; then
    BENCH_LINE[$key]="not run: this sllm has no --precision flag (fp32 only)"
    FAILURES+=("no $precision")
    echo "${BENCH_LINE[$key]}"
    return
  fi
  echo "${cmd[*]}"
  # 240 s at most (a step of these models takes well under a second); less once the budget is spent.
  local limit=$(( $(left_s) > 240 ? 240 : ($(left_s) < 60 ? 60 : $(left_s)) ))
  if ! timeout "$limit" "${cmd[@]}" >"$json"; then
    BENCH_LINE[$key]="FAILED (see gpu_check.log)"
    FAILURES+=("bench $model $precision")
    return
  fi
  cat "$json"
  merge_json "$OUTDIR/bench.json" "$json" "$model" "$precision" ||
    echo "gpu_check: could not add $json to bench.json (not one JSON object?)"
  local tps mfu ms ran
  tps=$(json_field "$json" tokens_per_s) mfu=$(json_field "$json" mfu) ms=$(json_field "$json" ms_per_step)
  ran=$(json_field "$json" precision)
  if [ "${ran:-fp32}" != "$precision" ] || [ -z "$mfu" ]; then
    BENCH_LINE[$key]="WRONG RUN: asked $precision on cuda, the JSON says precision '${ran:-none}', mfu '${mfu:-none}'"
    FAILURES+=("bench $model $precision")
    return
  fi
  BENCH_LINE[$key]=$(awk -v t="$tps" -v m="$mfu" -v s="$ms" 'BEGIN { printf "%.0f tok/s, %.1f ms/step, MFU %.2f%%", t, s, 100 * m }')
}

# bf16 with --profile: where the GPU time of a step goes (CUDA events around every kernel,
# GEMM, memset and copy; kernels/cuda/profile.cpp). The table goes to gpu_check.log; its
# last line and top rows go to the summary.
run_profile() {
  local model=$1
  section "bench train $model, bf16, --profile ($PROFILE_STEPS steps)"
  if [ "${GPU_CHECK_PROFILE:-1}" = 0 ]; then PROFILE_LINE[$model]="skipped (GPU_CHECK_PROFILE=0)"; echo "${PROFILE_LINE[$model]}"; return; fi
  if ! has_flag --profile || ! has_flag --precision; then
    PROFILE_LINE[$model]="not run: this sllm has no --profile flag"; echo "${PROFILE_LINE[$model]}"; return
  fi
  if [ "$(left_s)" -lt 60 ]; then
    PROFILE_LINE[$model]="skipped: $(left_s) s left of the ${BUDGET_S} s budget"; echo "${PROFILE_LINE[$model]}"; return
  fi
  local cmd=("$SLLM" bench train --config "$(sllm_config "$model")" --device cuda --precision bf16 --batch "$BATCH"
             --seq "$SEQ" --steps "$PROFILE_STEPS" --profile)
  local text="$WORK/profile_$model.txt"
  echo "${cmd[*]}"
  if ! timeout 150 "${cmd[@]}" >"$text" 2>&1; then
    cat "$text"
    PROFILE_LINE[$model]="FAILED (see gpu_check.log)"
    FAILURES+=("profile $model")
    return
  fi
  cat "$text"
  PROFILE_LINE[$model]=$(grep -m 1 "GPU time in kernels" "$text" | sed 's/^ *//; s/ (the gap.*//')
  # The table's rows start with "  <ms/step> <calls> <percent>%": the 10 heaviest.
  PROFILE_TOP[$model]=$(grep -E '^ +[0-9.]+ +[0-9.]+ +[0-9.]+% ' "$text" | head -10)
}

# The comparison's JSON as summary lines: ours, then each PyTorch column with ours/it.
vs_lines() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def mfu(s):
    return f"MFU {100 * s['mfu']:5.2f}%" if s.get("mfu") is not None else "MFU -"
ours = r.get("sllm")
head = f"{r['precision']}, median of {len(ours['runs']) if ours else 0} run(s)"
print(f"{head}: ours {ours['tokens_per_s']:.0f} tok/s, {ours['ms_per_step']:.1f} ms/step, {mfu(ours)}" if ours
      else f"{head}: no sllm run finished")
for key, label, ratio in [("pytorch", "PyTorch eager", "ratio"), ("pytorch_compile", "torch.compile", "ratio_compile"),
                          ("hf", "HF transformers eager", "ratio_hf")]:
    s = r.get(key)
    if not s:
        continue
    line = f"  {label:<22}{s['tokens_per_s']:>8.0f} tok/s {s['ms_per_step']:>7.1f} ms/step  {mfu(s)}"
    if ratio in r:
        line += f"   ours/it {r[ratio]:.2f}"
        if key == "hf":
            line += f" (issue 15 bar: >= 1.5, {'met' if r[ratio] >= 1.5 else 'NOT met'})"
    print(line)
for e in r.get("errors", []):
    print(f"  failed: {e[:240]}")
PY
}

run_vs_pytorch() {
  local model=$1 after=$2  # after: how many comparisons still follow this one
  # bf16 against autocast; a tree from before mixed precision compares fp32 with fp32.
  local precision=bf16
  has_flag --precision || precision=fp32
  section "vs PyTorch: $model ($precision, same GPU)"
  if [ -z "$TORCH_WHY" ]; then
    local out
    if out=$("$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'torch ' + torch.__version__ + ' sees no CUDA device'" 2>&1); then
      TORCH_WHY=ok
    else
      TORCH_WHY=$(echo "$out" | tail -1)
      [ -n "$TORCH_WHY" ] || TORCH_WHY="$PYTHON failed"
    fi
  fi
  if [ "$TORCH_WHY" != ok ]; then
    VS_LINES[$model]="skipped: $PYTHON has no PyTorch with CUDA ($TORCH_WHY)"
    echo "${VS_LINES[$model]}"
    return
  fi
  # Time for this comparison: what is left, less about 150 s for each one after it.
  local avail=$(( $(left_s) - 150 * after - 10 ))
  if [ "$avail" -lt 60 ]; then
    VS_LINES[$model]="skipped: $(left_s) s left of the ${BUDGET_S} s budget, $((150 * after)) s of it kept for the models after this one"
    echo "${VS_LINES[$model]}"
    return
  fi
  local extra=()
  # torch.compile costs about a minute per process: one compiled run, when the budget has room.
  if [ "${GPU_CHECK_COMPILE:-1}" = 1 ]; then
    if [ "$avail" -gt 200 ]; then extra+=(--compile --compile-rounds 1); else echo "(no torch.compile column: ${avail} s for this comparison)"; fi
  fi
  [ "${GPU_CHECK_HF:-1}" = 0 ] && extra+=(--no-hf)
  local json="$WORK/vs_$model.json"
  rm -f "$json"
  PYTHONUNBUFFERED=1 timeout "$avail" "$PYTHON" tools/bench_vs_pytorch_gpu.py \
      --config "$model" --sllm-config "$(sllm_config "$model")" --sllm "$SLLM" --rounds "$ROUNDS" --steps "$STEPS" \
      --batch "$BATCH" --seq "$SEQ" --precision "$precision" --timeout "$avail" "${extra[@]}" --json-out "$json"
  local rc=$?
  if [ -f "$json" ]; then
    merge_json "$OUTDIR/vs_pytorch.json" "$json" "$model" || echo "gpu_check: could not add $json to vs_pytorch.json"
    VS_LINES[$model]=$(vs_lines "$json")
  fi
  if [ "$rc" -ne 0 ]; then
    local why="FAILED (exit $rc, see gpu_check.log)"
    [ "$rc" -eq 124 ] && why="cut short at ${avail} s (the budget)"
    VS_LINES[$model]="${VS_LINES[$model]:+${VS_LINES[$model]}$'\n'}$why"
    FAILURES+=("vs PyTorch $model")
  fi
}

run_ctest() {
  section "ctest (everything but test_cuda, which ran above)"
  if [ "${GPU_CHECK_CTEST:-1}" = 0 ]; then CTEST_LINE="skipped (GPU_CHECK_CTEST=0)"; echo "$CTEST_LINE"; return; fi
  if [ "$(left_s)" -lt 60 ]; then CTEST_LINE="skipped: $(left_s) s left of the ${BUDGET_S} s budget"; echo "$CTEST_LINE"; return; fi
  if [ ! -f "$BUILD/CTestTestfile.cmake" ]; then CTEST_LINE="skipped: $BUILD is no CMake build folder"; echo "$CTEST_LINE"; return; fi
  local exclude='^$' suites
  if [ -x "$TEST_CUDA" ]; then
    # test_cuda's suites as an exclusion regex: ^(Suite1|Suite2)\.  (gtest_discover_tests names tests Suite.Test)
    suites=$("$TEST_CUDA" --gtest_list_tests 2>/dev/null | grep -E '^[A-Za-z0-9_/]+\.$' | sed 's/\.$//' | paste -sd'|')
    [ -n "$suites" ] && exclude="^(${suites})\\."
  fi
  local log="$BUILD/ctest-gpu-check.log"
  (cd "$BUILD" && timeout "$(( $(left_s) - 20 ))" ctest --output-on-failure -j "$JOBS" -E "$exclude") >"$log" 2>&1
  local rc=$?
  # The summary line ("100% tests passed, 0 tests failed out of 212") and the failures with
  # their output (--output-on-failure prints it right after the result line); the full log
  # stays in the build folder, since the returned files are few.
  CTEST_LINE=$(grep -E "tests passed" "$log" | tail -1)
  echo "${CTEST_LINE:-ctest printed no summary}"
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && CTEST_LINE="timed out at the budget; ${CTEST_LINE:-no summary}"
    FAILURES+=("ctest exit $rc")
    echo "ctest failed (exit $rc); full log: $log. The failures, with their output:"
    grep -E -A 30 '\*\*\*(Failed|Exception|Timeout)|\*\*\*Not Run' "$log" | head -n 200
    sed -n '/The following tests FAILED/,$p' "$log"
  fi
  [ -n "$CTEST_LINE" ] || CTEST_LINE="no summary (exit $rc, see $log)"
}

summary() {
  local status=$1 model p
  {
    echo
    echo "================ sllm GPU check: summary ================"
    echo "GPU:          $GPU_DESC"
    echo "test_cuda:    $TESTS_LINE"
    echo "ctest:        $CTEST_LINE"
    for model in "${MODELS[@]}"; do
      echo "---- $model, batch $BATCH x seq $SEQ ----"
      for p in $(precisions_of "$model"); do
        printf 'bench %-7s %s\n' "$p:" "${BENCH_LINE[$model $p]:-not run}"
      done
      echo "vs PyTorch:   $(echo "${VS_LINES[$model]:-not run}" | head -1)"
      echo "${VS_LINES[$model]:-}" | tail -n +2 | sed 's/^/            /'
      echo "profile bf16: ${PROFILE_LINE[$model]:-not run}"
      if [ -n "${PROFILE_TOP[$model]:-}" ]; then
        printf '            %11s %8s %6s  %s\n' ms/step calls % "kernel (the 10 heaviest; the whole table is in gpu_check.log)"
        echo "${PROFILE_TOP[$model]}" | sed 's/^/            /'
      fi
    done
    echo "---------------------------------------------------------"
    echo "MFU:          6 * params * tokens/s / 989e12 (sllm bench train's formula, every column)"
    echo "wall time:    ${SECONDS} s of a ${BUDGET_S} s budget; results in $OUTDIR"
    case "$status" in
      0) echo "RESULT:       ok" ;;
      3) echo "RESULT:       NO GPU: nothing above ran on a GPU; this is not a GPU result (exit 3)"
         [ ${#FAILURES[@]} -gt 0 ] && echo "              failed here: $(IFS=,; echo "${FAILURES[*]}")" ;;
      *) echo "RESULT:       FAILED: $(IFS=,; echo "${FAILURES[*]}") (exit $status)"
         [ "$HAVE_GPU" = 0 ] && echo "              (and no GPU was detected: nothing ran on a GPU)" ;;
    esac
    echo "========================================================="
  } | tee "$OUTDIR/summary.txt"
  return "$status"
}

main() {
  detect_gpu
  if ! build; then
    FAILURES+=("build")
    summary 1
    return
  fi
  BENCH_HELP=$("$SLLM" bench train --help 2>&1)
  rm -f "$OUTDIR/bench.json" "$OUTDIR/vs_pytorch.json"
  run_test_cuda
  local model p i
  for model in "${MODELS[@]}"; do
    for p in $(precisions_of "$model"); do run_bench "$model" "$p"; done
  done
  for model in "${MODELS[@]}"; do run_profile "$model"; done
  for i in "${!MODELS[@]}"; do run_vs_pytorch "${MODELS[$i]}" $(( ${#MODELS[@]} - i - 1 )); done
  run_ctest
  if [ "$HAVE_GPU" = 0 ]; then summary 3
  elif [ ${#FAILURES[@]} -gt 0 ]; then summary 1
  else summary 0
  fi
}

main 2>&1 | tee "$OUTDIR/gpu_check.log"
exit "${PIPESTATUS[0]}"

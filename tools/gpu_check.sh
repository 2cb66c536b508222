#!/usr/bin/env bash
# The one-command GPU run of issue 5 (`make gpu-check`), for a fresh NVIDIA machine holding
# this repository: build with CUDA, run every CUDA test against the CPU references, time a
# GPT-2 124M training step in fp32 and bf16, compare with PyTorch on the same GPU, run the
# rest of the test suite, and end with one summary block.
#
#   1. configure build-cuda (-DSLLM_CUDA=ON, Release; nvcc from PATH or /usr/local/cuda/bin;
#      SLLM_CUDA_ARCHS = the GPU's compute capability, so nvcc builds one architecture) and
#      build everything; a build error stops here (exit 1).
#   2. tests/test_cuda, with its GoogleTest JSON report.
#   3. sllm bench train --config gpt2-124m --device cuda --batch 8 --seq 1024, with
#      --precision fp32 and --precision bf16; then bf16 once more with --profile (5 steps):
#      GPU time per kernel, in gpu_check.log, its top rows in the summary.
#   4. tools/bench_vs_pytorch_gpu.py (bf16, or fp32 on a tree without --precision; PyTorch
#      eager, and torch.compile when the time budget allows), when python3 has torch with CUDA.
#   5. ctest of build-cuda without test_cuda's tests (they ran in step 2).
# A failing test does not stop the benches; it is reported and the exit status is 1.
# Without a visible GPU everything that can run still runs, the summary says so, and the
# exit status is 3: such a run is never a GPU result.
#
# Results go to $OUT (the device runner's folder; default build-cuda/gpu-results, ignored
# by git). At most 7 files, since the runner returns at most 8: gpu_check.log (all the
# console output), build.log, test_cuda.json, bench_fp32.json, bench_bf16.json,
# vs_pytorch.json, summary.txt.
#
# The C++ build needs GoogleTest, nlohmann-json and ICU's headers (tools/install_deps.sh).
# A machine without them that cannot download (such as the lent GPU machines) takes their
# Debian packages from .deps/debs: run `tools/gpu_check.sh --fetch-deps` where apt works,
# carry .deps, and this script unpacks them into /tmp/sllm-deps (never into /).
#
# Knobs (environment): GPU_CHECK_BUILD_DIR (default build-cuda), GPU_CHECK_SKIP_BUILD=1 (use
# the build folder as it is: dry runs), GPU_CHECK_STEPS (timed steps per bench, default 20),
# GPU_CHECK_ROUNDS (PyTorch comparison rounds, default 2), GPU_CHECK_COMPILE=0 (no
# torch.compile column), GPU_CHECK_PROFILE=0 (no profile run), GPU_CHECK_CTEST=0 (skip step 5), GPU_CHECK_BUDGET_S (wall-time
# budget that optional steps respect, default 540), SLLM_CUDA_ARCHS, JOBS (default nproc).
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
BUDGET_S=${GPU_CHECK_BUDGET_S:-540}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd) || exit 1
SLLM="$BUILD/sllm"
TEST_CUDA="$BUILD/tests/test_cuda"

# Filled in by the steps, read by the summary.
HAVE_GPU=0
GPU_DESC="none detected"
FAILURES=()
TESTS_LINE="not run"
CTEST_LINE="not run"
PYTORCH_LINE="not run"
PROFILE_LINE="not run"
PROFILE_TOP=""
declare -A BENCH_LINE=([fp32]="not run" [bf16]="not run")

section() { printf '\n==== %s (%ds) ====\n' "$1" "$SECONDS"; }
left_s() { echo $((BUDGET_S - SECONDS)); }

# Prints one field of a one-line JSON file, or nothing.
json_field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null; }

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
  echo "gpu_check: unpacking the carried packages of $DEPS_DIR into $DEPS_PREFIX"
  mkdir -p "$DEPS_PREFIX"
  local deb
  for deb in "$DEPS_DIR"/*.deb; do echo "  $(basename "$deb")"; dpkg-deb -x "$deb" "$DEPS_PREFIX" || return 1; done
  export CMAKE_PREFIX_PATH="$DEPS_PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  EXTRA_CMAKE=(-DICU_ROOT="$DEPS_PREFIX/usr")
}

build() {
  section "build ($BUILD, -j$JOBS)"
  if [ "${GPU_CHECK_SKIP_BUILD:-0}" = 1 ]; then
    echo "GPU_CHECK_SKIP_BUILD=1: using $BUILD as it is"
    [ -x "$SLLM" ] || { echo "gpu_check: $SLLM does not exist"; return 1; }
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
  timeout 400 "$TEST_CUDA" --gtest_output="json:$report"
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

run_bench() {
  local precision=$1 json="$OUTDIR/bench_$1.json"
  section "bench train gpt2-124m, $precision"
  rm -f "$json"
  local cmd=("$SLLM" bench train --config gpt2-124m --device cuda --batch 8 --seq 1024 --steps "$STEPS" --json)
  # A tree from before mixed precision has no --precision: there fp32 is the only path.
  if "$SLLM" bench train --help 2>&1 | grep -q -- --precision; then
    cmd+=(--precision "$precision")
  elif [ "$precision" != fp32 ]; then
    BENCH_LINE[$precision]="not run: this sllm has no --precision flag (fp32 only)"
    FAILURES+=("no $precision")
    echo "${BENCH_LINE[$precision]}"
    return
  fi
  echo "${cmd[*]}"
  if ! timeout 300 "${cmd[@]}" >"$json"; then
    BENCH_LINE[$precision]="FAILED (see gpu_check.log)"
    FAILURES+=("bench $precision")
    rm -f "$json"
    return
  fi
  cat "$json"
  local tps mfu ms ran
  tps=$(json_field "$json" tokens_per_s) mfu=$(json_field "$json" mfu) ms=$(json_field "$json" ms_per_step)
  ran=$(json_field "$json" precision)
  if [ "${ran:-fp32}" != "$precision" ] || [ -z "$mfu" ]; then
    BENCH_LINE[$precision]="WRONG RUN: asked $precision on cuda, the JSON says precision '${ran:-none}', mfu '${mfu:-none}'"
    FAILURES+=("bench $precision")
    return
  fi
  BENCH_LINE[$precision]=$(awk -v t="$tps" -v m="$mfu" -v s="$ms" 'BEGIN { printf "%.0f tok/s, MFU %.2f%%, %.1f ms/step", t, 100 * m, s }')
}

# bf16 with --profile: where the GPU time of a step goes (CUDA events around every kernel,
# GEMM, memset and copy; kernels/cuda/profile.cpp). The table goes to gpu_check.log; its
# last line and top rows go to the summary.
run_profile() {
  section "bench train gpt2-124m, bf16, --profile"
  if [ "${GPU_CHECK_PROFILE:-1}" = 0 ]; then PROFILE_LINE="skipped (GPU_CHECK_PROFILE=0)"; echo "$PROFILE_LINE"; return; fi
  if ! "$SLLM" bench train --help 2>&1 | grep -q -- --profile; then
    PROFILE_LINE="not run: this sllm has no --profile flag"; echo "$PROFILE_LINE"; return
  fi
  if [ "$(left_s)" -lt 120 ]; then PROFILE_LINE="skipped: $(left_s) s left of the ${BUDGET_S} s budget"; echo "$PROFILE_LINE"; return; fi
  local cmd=("$SLLM" bench train --config gpt2-124m --device cuda --precision bf16 --batch 8 --seq 1024 --steps 5 --profile)
  local text="$BUILD/profile_bf16.txt"
  echo "${cmd[*]}"
  if ! timeout 200 "${cmd[@]}" >"$text" 2>&1; then
    cat "$text"
    PROFILE_LINE="FAILED (see gpu_check.log)"
    FAILURES+=("profile bf16")
    return
  fi
  cat "$text"
  PROFILE_LINE=$(grep -m 1 "GPU time in kernels" "$text" | sed 's/^ *//; s/ (the gap.*//')
  # The table's rows start with "  <ms/step> <calls> <percent>%": the 12 heaviest.
  PROFILE_TOP=$(grep -E '^ +[0-9.]+ +[0-9.]+ +[0-9.]+% ' "$text" | head -12)
}

run_vs_pytorch() {
  # bf16 against autocast; a tree from before mixed precision compares fp32 with fp32.
  local precision=bf16
  "$SLLM" bench train --help 2>&1 | grep -q -- --precision || precision=fp32
  section "vs PyTorch ($precision, same GPU)"
  local why
  if ! why=$(python3 -c "import torch; assert torch.cuda.is_available(), 'torch ' + torch.__version__ + ' sees no CUDA device'" 2>&1); then
    PYTORCH_LINE="skipped: python3 has no PyTorch with CUDA ($(echo "$why" | tail -1))"
    echo "$PYTORCH_LINE"
    return
  fi
  local compile=()
  # torch.compile costs about a minute per process: only when the budget leaves room.
  if [ "${GPU_CHECK_COMPILE:-1}" = 1 ]; then
    if [ "$(left_s)" -gt 300 ]; then compile=(--compile); else echo "(no torch.compile column: $(left_s) s left of the budget)"; fi
  fi
  local json="$OUTDIR/vs_pytorch.json"
  rm -f "$json"
  if ! PYTHONUNBUFFERED=1 timeout "$(( $(left_s) > 200 ? $(left_s) - 60 : 140 ))" python3 tools/bench_vs_pytorch_gpu.py \
        --sllm "$SLLM" --rounds "$ROUNDS" --steps "$STEPS" --batch 8 --seq 1024 --precision "$precision" \
        "${compile[@]}" --json-out "$json"; then
    PYTORCH_LINE="FAILED (see gpu_check.log)"
    FAILURES+=("vs PyTorch")
    return
  fi
  PYTORCH_LINE=$(python3 - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = f'{r["precision"]}: ours {r["sllm"]["tokens_per_s"]:.0f} tok/s vs PyTorch eager {r["pytorch"]["tokens_per_s"]:.0f} ' \
    f'(MFU {100 * r["pytorch"]["mfu"]:.1f}%): ratio {r["ratio"]:.2f}'
if "pytorch_compile" in r:
    s += f'; compiled {r["pytorch_compile"]["tokens_per_s"]:.0f} (MFU {100 * r["pytorch_compile"]["mfu"]:.1f}%): ratio {r["ratio_compile"]:.2f}'
print(s)
EOF
)
}

run_ctest() {
  section "ctest (everything but test_cuda, which ran above)"
  if [ "${GPU_CHECK_CTEST:-1}" = 0 ]; then CTEST_LINE="skipped (GPU_CHECK_CTEST=0)"; echo "$CTEST_LINE"; return; fi
  if [ "$(left_s)" -lt 60 ]; then CTEST_LINE="skipped: $(left_s) s left of the ${BUDGET_S} s budget"; echo "$CTEST_LINE"; return; fi
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
  local status=$1
  {
    echo
    echo "================ sllm GPU check: summary ================"
    echo "GPU:          $GPU_DESC"
    echo "test_cuda:    $TESTS_LINE"
    echo "ctest:        $CTEST_LINE"
    echo "bench fp32:   ${BENCH_LINE[fp32]}"
    echo "bench bf16:   ${BENCH_LINE[bf16]}"
    echo "profile bf16: $PROFILE_LINE"
    if [ -n "$PROFILE_TOP" ]; then
      printf '            %11s %8s %6s  %s\n' ms/step calls % "kernel (the 12 heaviest; the whole table is in gpu_check.log)"
      echo "$PROFILE_TOP" | sed 's/^/            /'
    fi
    echo "vs PyTorch:   $PYTORCH_LINE"
    echo "wall time:    ${SECONDS} s; results in $OUTDIR"
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
  run_test_cuda
  run_bench fp32
  run_bench bf16
  run_profile
  run_vs_pytorch
  run_ctest
  if [ "$HAVE_GPU" = 0 ]; then summary 3
  elif [ ${#FAILURES[@]} -gt 0 ]; then summary 1
  else summary 0
  fi
}

main 2>&1 | tee "$OUTDIR/gpu_check.log"
exit "${PIPESTATUS[0]}"

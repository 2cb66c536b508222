#!/usr/bin/env bash
# Multi-rank checks of src/dist (issue 14), run by ctest as `dist_mpi`:
#   - check_collectives on 2 and 3 ranks: sums, the rank-order sum bitwise, broadcast, hashes;
#   - a rank that exits before a collective: the job ends with an error instead of hanging;
#   - `sllm bench allreduce` on 2 ranks: rank 0 alone prints, ranks = 2.
# Usage: run_mpi_tests.sh HAVE_MPI(ON|OFF) MPIEXEC check_collectives sllm
# Exits 77 (ctest's SKIP_RETURN_CODE) with a message when the build has no MPI or the
# launcher is missing.
set -u
HAVE_MPI=${1:?usage: run_mpi_tests.sh HAVE_MPI MPIEXEC check_collectives sllm}
MPIEXEC=${2:-}
CHECK=${3:?}
SLLM=${4:?}

# shellcheck source=tests/dist/mpi_launcher.sh
source "$(dirname "${BASH_SOURCE[0]}")/mpi_launcher.sh"
mpi_launcher_or_skip "$HAVE_MPI" "$MPIEXEC"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sllm_mpi_test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# mpi NP ARGS...: runs ARGS on NP ranks, at most 60 s; stdout in $WORK/out, stderr in $WORK/err.
mpi() {
  local np=$1
  shift
  timeout 60 "${launch[@]}" -np "$np" "$@" >"$WORK/out" 2>"$WORK/err"
}

for np in 2 3; do
  mpi "$np" "$CHECK"; rc=$?
  if [ "$rc" -ne 0 ]; then fail "check_collectives on $np ranks: exit status $rc"; cat "$WORK/out" "$WORK/err" >&2; continue; fi
  oks=$(grep -c "/$np: ok" "$WORK/out")
  [ "$oks" -eq "$np" ] || { fail "check_collectives on $np ranks: $oks of $np ranks ok"; cat "$WORK/out" "$WORK/err" >&2; }
done

mpi 2 "$CHECK" --die-rank 1; rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
  fail "a dead rank: exit status $rc (0: not noticed, 124: the others hung)"; cat "$WORK/out" "$WORK/err" >&2
fi

# A rank that hangs: the others give up after SLLM_COLLECTIVE_TIMEOUT (2 s) with a message.
SLLM_COLLECTIVE_TIMEOUT=2 mpi 2 "$CHECK" --hang-rank 1; rc=$?  # local ranks inherit the environment
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
  fail "a hung rank: exit status $rc (0: not noticed, 124: the others hung)"; cat "$WORK/out" "$WORK/err" >&2
else
  grep -q "waited 2 s in MPI_" "$WORK/err" || { fail "a hung rank: no collective-timeout message"; cat "$WORK/err" >&2; }
fi

mpi 2 "$SLLM" bench allreduce --sizes 1000 1MiB --reps 3 --json; rc=$?
if [ "$rc" -ne 0 ]; then
  fail "bench allreduce on 2 ranks: exit status $rc"; cat "$WORK/err" >&2
else
  [ "$(grep -c '"bench": "allreduce"' "$WORK/out")" -eq 1 ] || fail "bench allreduce: rank 0 alone should print"
  grep -q '"transport": "mpi", "ranks": 2' "$WORK/out" || { fail "bench allreduce: not 2 MPI ranks"; cat "$WORK/out" >&2; }
fi
mpi 2 "$SLLM" bench allreduce --sizes 1MiB --reps 2 --ordered --json; rc=$?
[ "$rc" -eq 0 ] && grep -q '"op": "ordered"' "$WORK/out" || { fail "bench allreduce --ordered on 2 ranks: exit status $rc"; cat "$WORK/out" "$WORK/err" >&2; }

if [ "$failures" -ne 0 ]; then
  echo "$failures MPI check(s) failed" >&2
  exit 1
fi
echo "all MPI checks passed (launcher: ${launch[*]})"

#!/usr/bin/env bash
# Data-parallel training on 2 MPI ranks (issue 14), run by ctest as `dist_mpi_training`.
# For pretraining (tiny GPT-2), LoRA SFT (with LoRA dropout on) and LoRA DPO, on --batch 2 per rank:
#   - bit-identical: 2 ranks --deterministic-reduce  ==  1 process --batch 2 --grad-accum 2
#     --deterministic-reduce (the same slices, per-slice gradients added in the same order):
#     every logged loss and gradient norm, and the final weights and optimizer state, bytes;
#   - ZeRO-1 (--zero 1) == the same run without it, bytes; a ZeRO-1 run stopped and resumed
#     on 2 ranks == the straight run, bytes; the overlapped all-reduce (no --deterministic-reduce)
#     == the rank-order one on 2 ranks, bytes;
#   - 2 ranks x batch 2 (MPI's own reduction) vs 1 process x batch 4 in one pass: within the
#     rounding of another summation order (the bound is derived in README.md, "Data-parallel
#     training"): losses and gradient norms relatively within 3e-5, final weights within 1e-5;
#   - DPO and a reward model with LoRA: 2 ranks --deterministic-reduce (and --zero 1) == one
#     process's accumulation, bytes;
#   - bad input: resuming a 2-rank run as one process, ranks started with different seeds or
#     reading different data, a multi-rank GRPO: each fails with its message and a
#     non-zero exit, never a hang.
# Usage: run_mpi_training_tests.sh HAVE_MPI(ON|OFF) MPIEXEC sllm compare_runs
# Exits 77 (ctest's SKIP_RETURN_CODE) with a message when the build has no MPI or the
# launcher is missing.
set -u
HAVE_MPI=${1:?usage: run_mpi_training_tests.sh HAVE_MPI MPIEXEC sllm compare_runs}
MPIEXEC=${2:-}
SLLM=${3:?}
COMPARE=${4:?}

# shellcheck source=tests/dist/mpi_launcher.sh
source "$(dirname "${BASH_SOURCE[0]}")/mpi_launcher.sh"
mpi_launcher_or_skip "$HAVE_MPI" "$MPIEXEC"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sllm_mpi_training.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# mpi2 ARGS...: sllm ARGS on 2 ranks, at most 120 s; output in $WORK/log.
mpi2() { timeout 120 "${launch[@]}" -np 2 "$SLLM" "$@" >log 2>&1; }
one() { timeout 120 "$SLLM" "$@" --threads 1 >log 2>&1; }
# ok WHAT: the last command succeeded, else FAIL with its log.
ok() {
  local rc=$?
  [ "$rc" -eq 0 ] || { fail "$1: exit status $rc"; tail -20 log >&2; }
}
# refused WHAT PATTERN: the last command failed (not a timeout) saying PATTERN.
refused() {
  local rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then fail "$1: exit status $rc (0: accepted, 124: hung)"; return; fi
  grep -q "$2" log || { fail "$1: no message matching '$2'"; tail -20 log >&2; }
}
compare() { "$COMPARE" "$@" || fail "compare_runs $*"; }
# strip_batch_metrics RUN...: RUN.m/metrics.jsonl without label_tokens and epoch, which describe
# the micro-batch (one of 2 rows when accumulating, one of 2 x 2 rows on 2 ranks).
strip_batch_metrics() {
  local f
  for f in "$@"; do
    mkdir -p "$f.m" && sed -E 's/"(epoch|label_tokens)":[0-9.e+-]+,//g' "$f/metrics.jsonl" >"$f.m/metrics.jsonl"
  done
}

# Data: a small synthetic corpus and tokenizer, story-QA examples, a tiny base model with a
# context of 128 for SFT.
"$SLLM" data synth --out synth --size-mb 0.3 --seed 1 >log 2>&1 &&
  "$SLLM" tokenizer train --input synth/train.txt --vocab-size 300 --pattern gpt2 --out tok >log 2>&1 &&
  "$SLLM" prepare --tokenizer tok --input synth/train.txt --out data >log 2>&1 &&
  "$SLLM" data story-qa --out qa --train 40 --val 4 --test 4 --seed 1 >log 2>&1 &&
  "$SLLM" pretrain --config tiny --data data --out tiny64 --steps 1 --batch 1 --seq 8 --quiet >log 2>&1
ok "setup" || exit 1
sed 's/"n_ctx": 64/"n_ctx": 128/; s/"n_positions": 64/"n_positions": 128/' tiny64/ckpt-1/config.json >tiny128.json
one pretrain --config tiny128.json --data data --out base --steps 2 --batch 2 --seq 64 --quiet
ok "base model" || exit 1

# --- pretraining ---
P=(pretrain --config tiny --data data --steps 6 --seq 64 --eval-every 3 --eval-batches 2 --save-every 3 --quiet)
one "${P[@]}" --out p_accum --batch 2 --grad-accum 2 --deterministic-reduce; ok "pretrain 1 process, accumulation"
one "${P[@]}" --out p_big --batch 4; ok "pretrain 1 process, batch 4"
mpi2 "${P[@]}" --out p_det --batch 2 --deterministic-reduce; ok "pretrain 2 ranks --deterministic-reduce"
mpi2 "${P[@]}" --out p_zero --batch 2 --deterministic-reduce --zero 1; ok "pretrain 2 ranks --zero 1"
mpi2 "${P[@]}" --out p_mpi --batch 2; ok "pretrain 2 ranks"
mpi2 "${P[@]}" --out p_resumed --batch 2 --deterministic-reduce --zero 1 --stop-at 3; ok "pretrain 2 ranks, stopped"
mpi2 "${P[@]}" --out p_resumed --batch 2 --deterministic-reduce --zero 1 --resume; ok "pretrain 2 ranks, resumed"
[ "$(grep -c '"ranks":2' p_det/metrics.jsonl)" -eq 6 ] || fail "pretrain 2 ranks: rank 0 should log 6 steps with ranks 2"

# Validation differs by design between p_accum (val batches of 2) and the 2-rank runs (of 4).
compare metrics p_accum p_det 0 --ignore-val
compare files p_accum/ckpt-6 p_det/ckpt-6 model.safetensors optimizer.safetensors
compare metrics p_det p_zero 0
compare files p_det/ckpt-6 p_zero/ckpt-6 model.safetensors optimizer.safetensors trainer_state.json
compare metrics p_det p_resumed 0
compare files p_det/ckpt-6 p_resumed/ckpt-6 model.safetensors optimizer.safetensors
# Without --deterministic-reduce, from step 2 on the all-reduce overlaps backward (per
# bucket, as gradients become final); on 2 ranks a sum has one order, so: the same bits.
compare metrics p_det p_mpi 0
compare files p_det/ckpt-6 p_mpi/ckpt-6 model.safetensors optimizer.safetensors
compare metrics p_big p_mpi 3e-5
compare tensors p_big/ckpt-6/model.safetensors p_mpi/ckpt-6/model.safetensors 1e-5

# --- LoRA SFT (dropout on: rank r's slice of micro-batch k draws mask k*2 + r) ---
S=(sft --model base/ckpt-2 --data qa/train.jsonl --method lora --lora-r 4 --steps 4 --seq 128 --truncate --lr 1e-3
   --val-count 4 --eval-every 2 --save-every 2 --quiet)
one "${S[@]}" --out s_accum --batch 2 --grad-accum 2 --deterministic-reduce; ok "sft 1 process, accumulation"
mpi2 "${S[@]}" --out s_det --batch 2 --deterministic-reduce; ok "sft 2 ranks --deterministic-reduce"
mpi2 "${S[@]}" --out s_zero --batch 2 --deterministic-reduce --zero 1; ok "sft 2 ranks --zero 1"
one "${S[@]}" --out s_big --batch 4 --lora-dropout 0; ok "sft 1 process, batch 4, no dropout"
mpi2 "${S[@]}" --out s_mpi --batch 2 --lora-dropout 0; ok "sft 2 ranks, no dropout"
strip_batch_metrics s_accum s_det
compare metrics s_accum.m s_det.m 0
compare files s_accum/ckpt-4 s_det/ckpt-4 adapter_model.safetensors optimizer.safetensors
compare metrics s_det s_zero 0
compare files s_det/ckpt-4 s_zero/ckpt-4 adapter_model.safetensors optimizer.safetensors
compare metrics s_big s_mpi 3e-5
compare tensors s_big/ckpt-4/adapter_model.safetensors s_mpi/ckpt-4/adapter_model.safetensors 1e-5

# --- DPO with LoRA (dropout on); the reference pass is split over the ranks ---
for i in $(seq 1 24); do echo "{\"prompt\": \"Story $i: who ran?\", \"chosen\": \"Tom ran $i\", \"rejected\": \"no $i\"}"; done >pairs.jsonl
D=(dpo --model base/ckpt-2 --data pairs.jsonl --steps 4 --seq 64 --lr 1e-3 --val-count 4 --eval-every 2 --save-every 2 --quiet)
one "${D[@]}" --out d_accum --batch 2 --grad-accum 2 --deterministic-reduce; ok "dpo 1 process, accumulation"
mpi2 "${D[@]}" --out d_det --batch 2 --deterministic-reduce; ok "dpo 2 ranks --deterministic-reduce"
mpi2 "${D[@]}" --out d_zero --batch 2 --deterministic-reduce --zero 1; ok "dpo 2 ranks --zero 1"
strip_batch_metrics d_accum d_det
compare metrics d_accum.m d_det.m 0 --ignore-val
compare files d_accum/ckpt-4 d_det/ckpt-4 adapter_model.safetensors optimizer.safetensors
compare metrics d_det d_zero 0
compare files d_det/ckpt-4 d_zero/ckpt-4 adapter_model.safetensors optimizer.safetensors

# --- a LoRA reward model (score head + adapter) ---
R=(reward train --model base/ckpt-2 --data pairs.jsonl --method lora --steps 4 --seq 64 --lr 1e-3 --val-count 4
   --eval-every 2 --save-every 2 --quiet)
one "${R[@]}" --out r_accum --batch 2 --grad-accum 2 --deterministic-reduce; ok "reward 1 process, accumulation"
mpi2 "${R[@]}" --out r_det --batch 2 --deterministic-reduce --zero 1; ok "reward 2 ranks --deterministic-reduce --zero 1"
strip_batch_metrics r_accum r_det
compare metrics r_accum.m r_det.m 0 --ignore-val
compare files r_accum/ckpt-4 r_det/ckpt-4 optimizer.safetensors

# --- bad input ---
one "${P[@]}" --out p_det --batch 2 --steps 8 --resume
refused "resume a 2-rank run as 1 process" "trained on 2 rank"
timeout 120 "${launch[@]}" -np 1 "$SLLM" "${P[@]}" --out p_seed --batch 2 --seed 1 : -np 1 "$SLLM" "${P[@]}" --out p_seed \
  --batch 2 --seed 2 >log 2>&1
refused "ranks with different seeds" "disagree with rank 0 on the seed"
"$SLLM" prepare --tokenizer tok --input synth/train.txt --out data2 --val-fraction 0.2 >log 2>&1
timeout 120 "${launch[@]}" -np 1 "$SLLM" "${P[@]}" --out p_data --batch 2 : -np 1 "$SLLM" "${P[@]/#data/data2}" \
  --out p_data --batch 2 >log 2>&1
refused "ranks reading different data" "disagree with rank 0 on the training data"
mpi2 grpo --model base/ckpt-2 --prompts pairs.jsonl --reward verifier --out g --steps 1 --quiet
refused "grpo on 2 ranks" "built for pretrain, sft, dpo and reward train only"

if [ "$failures" -ne 0 ]; then
  echo "$failures data-parallel training check(s) failed" >&2
  exit 1
fi
echo "all data-parallel training checks passed (launcher: ${launch[*]})"

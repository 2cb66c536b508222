#!/usr/bin/env bash
# `make demo`: the whole pretraining pipeline on the built-in synthetic story corpus, in about
# 8 minutes on 2 quiet CPU cores (1000 steps; DEMO_STEPS=200 gives a quick look in 2):
#   synthetic corpus -> BPE tokenizer -> token shards -> a sample from the untrained model
#   -> pretrain the `small` preset -> a sample from the trained model -> loss plot
#   -> first and last validation loss; the script fails unless the last is at most half the first.
# Re-runnable: it replaces data/synth, runs/demo-tokenizer, runs/demo-data, runs/demo-init and
# runs/demo. Knobs (environment): SLLM (binary, default build/sllm), DEMO_THREADS (2),
# DEMO_STEPS (1000: `make demo-sft` needs a base that has learned the story world), DEMO_BATCH (8), DEMO_SEQ (128), DEMO_LR (2e-3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SLLM=${SLLM:-build/sllm}
THREADS=${DEMO_THREADS:-2}
STEPS=${DEMO_STEPS:-1000}
BATCH=${DEMO_BATCH:-8}
SEQ=${DEMO_SEQ:-128}
LR=${DEMO_LR:-2e-3}
PROMPT="One cold morning, a small boy named"
RUN=runs/demo

[ -x "$SLLM" ] || { echo "demo: $SLLM not found; run \`make\` first" >&2; exit 1; }
section() { printf '\n==== %s\n' "$*"; }
start=$SECONDS

section "1/6 synthetic corpus -> data/synth/train.txt"
rm -rf data/synth runs/demo-tokenizer runs/demo-data runs/demo-init "$RUN"
"$SLLM" data synth --out data/synth --size-mb 8 --seed 1337

section "2/6 byte-level BPE tokenizer -> runs/demo-tokenizer"
# The synthetic corpus has a small vocabulary: BPE runs out of pairs to merge well below 4096.
"$SLLM" tokenizer train --input data/synth/train.txt --vocab-size 4096 --pattern gpt2 --out runs/demo-tokenizer

section "3/6 token shards -> runs/demo-data"
"$SLLM" prepare --tokenizer runs/demo-tokenizer --input data/synth/train.txt --out runs/demo-data

# The same seed as the real run gives the same initial weights; one step at a negligible
# learning rate leaves them as they were and saves them as a model directory to sample from.
section "4/6 sample before training (random init)"
"$SLLM" pretrain --config small --data runs/demo-data --out runs/demo-init --steps 1 --lr 1e-12 \
  --batch 1 --seq "$SEQ" --eval-batches 1 --threads "$THREADS" --quiet 2>/dev/null
"$SLLM" generate --model runs/demo-init --prompt "$PROMPT" --max-new-tokens 40 --temperature 0.8 --seed 1 \
  --threads "$THREADS"

section "5/6 pretrain small (GPT-2 family, 6 layers, C=384) for $STEPS steps of $BATCH x $SEQ tokens -> $RUN"
train_start=$SECONDS
"$SLLM" pretrain --config small --data runs/demo-data --out "$RUN" --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" \
  --lr "$LR" --warmup 10 --eval-every 25 --eval-batches 4 --threads "$THREADS"
train_seconds=$((SECONDS - train_start))

section "6/6 sample after training, loss plot"
"$SLLM" generate --model "$RUN" --prompt "$PROMPT" --max-new-tokens 80 --temperature 0.8 --seed 1 --threads "$THREADS"
"$SLLM" plot "$RUN"

# First and last val_loss of the run (the trainer evaluates at step 1 and at the last step).
read -r first last < <(awk 'match($0, /"val_loss":[-+0-9.eE]+/) {
    v = substr($0, RSTART + 11, RLENGTH - 11); if (first == "") first = v; last = v }
  END { print first, last }' "$RUN/metrics.jsonl")
ratio=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.3f", b / a }')
section "result"
echo "val_loss: first $first, last $last, ratio $ratio (must be <= 0.5)"
echo "training: ${train_seconds} s; whole demo: $((SECONDS - start)) s; plot: $RUN/loss.svg"
awk -v r="$ratio" 'BEGIN { exit !(r <= 0.5) }' || { echo "demo FAILED: the validation loss did not halve" >&2; exit 1; }
echo "demo OK"

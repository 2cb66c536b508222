#!/usr/bin/env bash
# `make demo-rlhf`: RLHF on a preference a rule can check, from the `make demo-sft` model
# (runs/demo-sft/full; made first when missing):
#   rlhf-story data (data/rlhf: prompts and preference pairs, src/data/rlhf_story.cpp)
#   -> the SFT model's verifier pass rate on held-out prompts
#   -> a reward model on the pairs (sllm reward train) and its held-out pair accuracy
#   -> PPO (sllm ppo), DPO on the pairs (sllm dpo), GRPO (sllm grpo), the policy runs against
#      the verifier -> each one's held-out pass rate
#   -> runs/demo-rlhf/results.md, results.json, pass_rate.svg and reward / KL curves.
# The preference: asked about the child's feeling in wordings the SFT data never used ("How was
# Jade feeling?"), the answer must use the story's feeling word (the uses-word verifier;
# data/README.md says why this task and not a story-writing one). The pass rate is measured
# with the rollouts' sampling (temperature 1, 2 samples per test prompt) and greedily.
# The script fails unless the reward model's held-out accuracy is >= 90%, PPO raises the
# sampled pass rate by >= 30 points with its mean KL per response token below KL_BOUND, and
# GRPO and DPO each raise it (issue 11's bars).
# Why PPO's reward is the verifier and not the reward model by default: measured on this task
# (2026-12-05), PPO against the reward model (89.5% held-out pair accuracy) raised the reward
# model's score from 0.34 to 2.2 while the pass rate moved from 29.5% to only 33.8%: the policy
# learned to answer *a* feeling word, which this reward model scores high whether or not it is
# the story's (its weak half is exactly the other-feeling pairs). That is reward-model
# over-optimization (Gao et al. 2022, "Scaling Laws for Reward Model Overoptimization"), worth
# seeing: PPO_REWARD=rm runs it.
# Knobs (environment): SLLM (binary), DEMO_THREADS (2), RLHF_TRAIN (training stories, 1000),
# RM_STEPS (150), PPO_STEPS (50), GRPO_STEPS (40), DPO_STEPS (80), KL_BOUND (2.0 nats per token),
# PPO_REWARD (verifier | rm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SLLM=${SLLM:-build/sllm}
THREADS=${DEMO_THREADS:-2}
TRAIN=${RLHF_TRAIN:-1000}
RM_STEPS=${RM_STEPS:-150}
PPO_STEPS=${PPO_STEPS:-50}
GRPO_STEPS=${GRPO_STEPS:-40}
DPO_STEPS=${DPO_STEPS:-80}
KL_BOUND=${KL_BOUND:-2.0}
PPO_REWARD=${PPO_REWARD:-verifier}
MAX_NEW=4  # answers are one feeling word and <|endoftext|>: ~2 tokens; 4 leaves room, not for lists
SFT=runs/demo-sft/full
DATA=data/rlhf
OUT=runs/demo-rlhf

[ -x "$SLLM" ] || { echo "demo-rlhf: $SLLM not found; run \`make binary\` first" >&2; exit 1; }
section() { printf '\n==== %s\n' "$*"; }
start=$SECONDS

section "1/7 the SFT model ($SFT)"
if [ -f "$SFT/latest" ]; then
  echo "reusing $SFT ($(cat "$SFT/latest")); delete it to fine-tune again"
else
  echo "$SFT is missing: running the SFT demo first (tools/demo_sft.sh)"
  SLLM="$SLLM" bash tools/demo_sft.sh
fi

section "2/7 verifiable prompts and preference pairs -> $DATA"
rm -rf "$OUT"
mkdir -p "$OUT"
"$SLLM" data rlhf-story --out "$DATA" --train "$TRAIN" --val 200 --test 200 --seed 1337
head -n 1 "$DATA/prompts.test.jsonl"

# verify NAME MODEL [flags]: held-out pass rates, sampled (T = 1, 2 per prompt) and greedy.
verify() {
  local name=$1
  shift
  "$SLLM" verify "$@" --prompts "$DATA/prompts.test.jsonl" --samples 2 --temperature 1 --max-new-tokens $MAX_NEW \
    --threads "$THREADS" --out "$OUT/verify-$name.json"
  "$SLLM" verify "$@" --prompts "$DATA/prompts.test.jsonl" --samples 1 --temperature 0 --max-new-tokens $MAX_NEW \
    --threads "$THREADS" --out "$OUT/verify-$name-greedy.json"
}
pass_of() { python3 -c "import json,sys; print('%.1f' % (100 * json.load(open(sys.argv[1]))['pass_rate']))" "$1"; }
# timed NAME CMD...: runs CMD, keeps its wall time in $OUT/NAME.seconds and its log.
timed() {
  local name=$1 t0=$SECONDS
  shift
  "$@" 2> >(tee "$OUT/$name.log" >&2)
  echo $((SECONDS - t0)) >"$OUT/$name.seconds"
}

section "3/7 the SFT model's pass rate on held-out prompts"
verify sft --model "$SFT"

section "4/7 reward model on the pairs ($RM_STEPS steps), held-out pair accuracy"
timed rm "$SLLM" reward train --model "$SFT" --data "$DATA/pairs.train.jsonl" --template none --out "$OUT/rm" \
  --method full --steps "$RM_STEPS" --batch 16 --seq 56 --lr 3e-4 --warmup 10 --eval-every 50 --threads "$THREADS" --quiet
"$SLLM" reward score --model "$OUT/rm" --data "$DATA/pairs.val.jsonl" --template none --threads "$THREADS" \
  >"$OUT/rm-val-scores.jsonl"
rm_acc=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print('%.1f' % (100 * sum(r['chosen'] > r['rejected'] for r in rows) / len(rows)))" "$OUT/rm-val-scores.jsonl")
echo "reward model: held-out pair accuracy $rm_acc% ($(wc -l <"$DATA/pairs.val.jsonl") pairs of $DATA/pairs.val.jsonl)"

# The policy runs: full fine-tuning of the SFT model (TRL's PPO default too), lr 2e-5.
rl_common=(--model "$SFT" --prompts "$DATA/prompts.train.jsonl" --template none --method full --lr 2e-5
           --max-new-tokens $MAX_NEW --threads "$THREADS" --quiet)

case $PPO_REWARD in
  verifier) ppo_reward=verifier:uses-word ;;
  rm) ppo_reward="rm:$OUT/rm" ;;
  *) echo "demo-rlhf: PPO_REWARD must be verifier or rm, got '$PPO_REWARD'" >&2; exit 1 ;;
esac
section "5/7 PPO against $ppo_reward ($PPO_STEPS iterations of 32 rollouts)"
timed ppo "$SLLM" ppo "${rl_common[@]}" --reward "$ppo_reward" --out "$OUT/ppo" --steps "$PPO_STEPS" --batch 32 \
  --mini-batch-size 16 --num-ppo-epochs 2 --kl-coef 0.05
verify ppo --model "$OUT/ppo"

section "6/7 DPO on the same pairs ($DPO_STEPS steps, LoRA)"
timed dpo "$SLLM" dpo --model "$SFT" --data "$DATA/pairs.train.jsonl" --template none --out "$OUT/dpo" --method lora \
  --steps "$DPO_STEPS" --batch 16 --seq 56 --lr 2e-3 --beta 0.1 --eval-every 40 --threads "$THREADS" --quiet
verify dpo --model "$SFT" --adapter "$OUT/dpo"

section "7/7 GRPO against the verifier ($GRPO_STEPS iterations of 8 prompts x 4 completions)"
timed grpo "$SLLM" grpo "${rl_common[@]}" --reward verifier --out "$OUT/grpo" --steps "$GRPO_STEPS" --batch 8 \
  --num-generations 4 --mini-batch-size 16 --num-iterations 2 --beta 0.04
verify grpo --model "$OUT/grpo"

# ---- plots and the table -----------------------------------------------------------------
for run in ppo grpo; do
  "$SLLM" plot "$OUT/$run" --metric reward_mean --smooth 0.8 >/dev/null
  "$SLLM" plot "$OUT/$run" --metric kl_per_token --smooth 0.8 >/dev/null
done
"$SLLM" plot "$OUT/rm" >/dev/null
"$SLLM" plot "$OUT/dpo" >/dev/null

python3 - "$OUT" "$rm_acc" "$KL_BOUND" "$PPO_REWARD" <<'PY'
import json, sys, datetime
out, rm_acc, kl_bound, ppo_reward = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def pass_rate(name, greedy=False):
    return 100 * json.load(open(f"{out}/verify-{name}{'-greedy' if greedy else ''}.json"))["pass_rate"]
def metrics(run):
    return [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl")]
def seconds(name):
    return int(open(f"{out}/{name}.seconds").read())
rows, tail = [], 10
sft = pass_rate("sft")
for name, label in [("sft", "SFT model (runs/demo-sft/full)"), ("ppo", f"PPO ({'reward model' if ppo_reward == 'rm' else 'verifier'}, full)"),
                    ("dpo", "DPO (pairs, LoRA)"), ("grpo", "GRPO (verifier, full)")]:
    row = {"row": name, "label": label, "pass_rate_pct": round(pass_rate(name), 1),
           "greedy_pass_rate_pct": round(pass_rate(name, True), 1), "gain_pts": round(pass_rate(name) - sft, 1)}
    if name in ("ppo", "grpo"):
        m = metrics(name)
        last = m[-tail:]
        row["first_reward"] = m[0]["reward_mean"]
        row["last_reward"] = sum(r["reward_mean"] for r in last) / len(last)
        row["kl_per_token"] = sum(r["kl_per_token"] for r in last) / len(last)
        row["max_kl_per_token"] = max(r["kl_per_token"] for r in m)
        phases = ["time_rollout_s", "time_reward_s", "time_reference_s", "time_value_s", "time_update_s"]
        row["seconds_per_iteration"] = {p[5:-2]: round(sum(r[p] for r in m) / len(m), 3) for p in phases}
    if name != "sft":
        row["train_seconds"] = seconds(name)
    rows.append(row)
result = {"date": datetime.date.today().isoformat(), "rm_heldout_accuracy_pct": rm_acc, "rm_train_seconds": seconds("rm"),
          "kl_bound_per_token": kl_bound, "rows": rows}
json.dump(result, open(f"{out}/results.json", "w"), indent=2)

def fmt(v, spec):
    return format(v, spec) if v is not None else "n/a"
lines = ["| method | pass rate, T=1 (%) | greedy (%) | vs SFT (pts) | reward first -> last 10 | KL/token, last 10 (max) | train time |",
         "|---|---|---|---|---|---|---|"]
for r in rows:
    rw = f"{r['first_reward']:.3f} -> {r['last_reward']:.3f}" if "last_reward" in r else "n/a"
    kl = f"{r['kl_per_token']:.3f} ({r['max_kl_per_token']:.3f})" if "kl_per_token" in r else "n/a"
    t = f"{r['train_seconds']} s" if "train_seconds" in r else "n/a"
    lines.append(f"| {r['label']} | {r['pass_rate_pct']:.1f} | {r['greedy_pass_rate_pct']:.1f} | {r['gain_pts']:+.1f} | {rw} | {kl} | {t} |")
table = "\n".join(lines) + "\n"
ppo = next(r for r in rows if r["row"] == "ppo")
phases = ", ".join(f"{k} {v:.2f} s" for k, v in ppo["seconds_per_iteration"].items())
open(f"{out}/results.md", "w").write(f"""# make demo-rlhf results ({result['date']})

Held-out verifier pass rate on 200 test prompts of data/rlhf/prompts.test.jsonl (stories unseen in
training): the answer must use the story's feeling word (uses-word). T=1: 2 samples per prompt
at temperature 1 (as the rollouts sample); greedy: 1 answer per prompt. Reward and KL columns
are PPO's / GRPO's training rollouts (metrics.jsonl; KL per response token = k1 estimate,
log pi - log pi_ref, mean over the last 10 iterations, and its largest value over the run).

Reward model (sllm reward train, full, on data/rlhf/pairs.train.jsonl): held-out accuracy on
data/rlhf/pairs.val.jsonl **{rm_acc:.1f}%** ({result['rm_train_seconds']} s).

{table}
PPO's time per iteration (mean): {phases}.
Plots: ppo/reward_mean.svg, ppo/kl_per_token.svg, grpo/reward_mean.svg, grpo/kl_per_token.svg.
""")
print(table)
PY

"$SLLM" plot-bars --out "$OUT/pass_rate.svg" --title "held-out verifier pass rate, T=1 ($(date -u +%Y-%m-%d))" \
  --y-label "pass rate (%)" --y-max 100 --bar "SFT=$(pass_of "$OUT/verify-sft.json")" "PPO=$(pass_of "$OUT/verify-ppo.json")" \
  "DPO=$(pass_of "$OUT/verify-dpo.json")" "GRPO=$(pass_of "$OUT/verify-grpo.json")"

section "result"
cat "$OUT/results.md"
echo "files: $OUT/results.md, $OUT/results.json, $OUT/pass_rate.svg, $OUT/{ppo,grpo}/{reward_mean,kl_per_token}.svg"
echo "whole demo-rlhf: $((SECONDS - start)) s"

python3 - "$OUT/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rows = {x["row"]: x for x in r["rows"]}
fails = []
if r["rm_heldout_accuracy_pct"] < 90:
    fails.append(f"reward model held-out accuracy {r['rm_heldout_accuracy_pct']}% < 90%")
if rows["ppo"]["gain_pts"] < 30:
    fails.append(f"PPO raised the pass rate by {rows['ppo']['gain_pts']} points (< 30)")
if rows["ppo"]["kl_per_token"] > r["kl_bound_per_token"]:
    fails.append(f"PPO's KL per token {rows['ppo']['kl_per_token']:.3f} > bound {r['kl_bound_per_token']}")
for name in ("dpo", "grpo"):
    if rows[name]["gain_pts"] <= 0:
        fails.append(f"{name.upper()} did not raise the pass rate ({rows[name]['gain_pts']:+.1f} points)")
for f in fails:
    print("demo-rlhf FAILED:", f, file=sys.stderr)
sys.exit(1 if fails else 0)
PY

// The training-loop flags that `sllm pretrain` and `sllm sft` share, read in one place into
// either command's options (train::PretrainOptions, train::SftRunOptions: the same member
// names). Each command declares the flags itself (their help texts show its own defaults) and
// reads its own --steps.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/args.h"
#include "dist/comm.h"

namespace sllm::cli {

template <class CommandOptions>
void read_loop_flags(const Args& args, CommandOptions& o) {
  o.batch = args.get_int("--batch", o.batch);
  o.seq = args.get_int("--seq", o.seq);
  o.grad_accum = args.get_int("--grad-accum", o.grad_accum);
  o.lr = args.get_double("--lr", o.lr);
  o.warmup = args.get_int("--warmup", o.warmup);
  o.weight_decay = args.get_double("--weight-decay", o.weight_decay);
  o.grad_clip = args.get_double("--grad-clip", o.grad_clip);
  o.seed = static_cast<uint64_t>(args.get_int("--seed", static_cast<int64_t>(o.seed)));
  o.eval_every = args.get_int("--eval-every", o.eval_every);
  o.save_every = args.get_int("--save-every", o.save_every);
  o.stop_at = args.get_int("--stop-at", o.stop_at);
  o.resume = args.has("--resume");
  o.quiet = args.has("--quiet");
  o.device = args.get("--device", o.device);
  o.precision = args.get("--precision", o.precision);
  const int64_t threads = args.get_int("--threads", 0);
  if (threads > 0) {
    omp_set_num_threads(static_cast<int>(threads));
  } else if (dist::local_ranks() > 1 && !std::getenv("OMP_NUM_THREADS")) {
    // N ranks on one machine share its cores: each takes 1/N of those it may run on (a
    // launcher that binds each rank to a core leaves it one).
    omp_set_num_threads(std::max(1, omp_get_num_procs() / dist::local_ranks()));
  }
}

// The flags of a data-parallel run (train/data_parallel.h), for the commands built for it
// (pretrain, sft), which declare --deterministic-reduce and --zero.
template <class CommandOptions>
void read_data_parallel_flags(const Args& args, CommandOptions& o) {
  o.data_parallel.deterministic_reduce = args.has("--deterministic-reduce");
  o.data_parallel.zero = static_cast<int>(args.get_int("--zero", o.data_parallel.zero));
}

}  // namespace sllm::cli

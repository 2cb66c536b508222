#!/usr/bin/env python3
"""Data-parallel scaling on paper (issue 14): bytes each rank sends per optimizer step and the
predicted step time for 1/2/8 GPUs in one node and 2/4 nodes of 8, from a measured one-GPU
compute step and link bandwidths given as parameters. Prints a Markdown table (README.md,
"Data-parallel training").

The model of one all-reduce of b bytes over n ranks (a ring, as NCCL's default for large
messages; nccl-tests' definitions, https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md):
    time = b * 2(n-1)/n / busbw  +  buckets * 2(n-1) * latency
where busbw is the bus bandwidth the links sustain per rank: NVLink inside a node, the
per-GPU InfiniBand rail across nodes (a ring over several nodes runs at the slowest hop).
sllm reduces gradients in buckets of 4 Mi floats after the whole backward (no overlap), so
its step is compute + all-reduce; "overlapped" is the bound of a reducer that hides the
all-reduce under backward, max(compute, all-reduce). ZeRO-1 in sllm adds a broadcast of each
rank's updated slice, (n-1)/n * b more per rank.

Standard library only:
    python3 tools/dp_scaling.py --params 124439808 --compute-ms 65.44 --tokens-per-gpu 8192
"""
import argparse
import math


def allreduce_s(nbytes, n, busbw_gbs, latency_us, bucket_bytes):
    if n == 1:
        return 0.0
    buckets = math.ceil(nbytes / bucket_bytes)
    return nbytes * 2 * (n - 1) / n / (busbw_gbs * 1e9) + buckets * 2 * (n - 1) * latency_us * 1e-6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=int, default=124439808, help="trainable parameters (gpt2-124m)")
    ap.add_argument("--grad-bytes", type=int, default=4, help="bytes per gradient element sent (sllm: fp32 = 4)")
    ap.add_argument("--compute-ms", type=float, default=65.44,
                    help="measured one-GPU step (H200, gpt2-124m bf16, batch 8 x 1024: ../shared/measurements)")
    ap.add_argument("--tokens-per-gpu", type=int, default=8 * 1024, help="tokens per GPU per step")
    ap.add_argument("--nvlink-busbw", type=float, default=360.0, help="GB/s, all-reduce bus bandwidth inside a node")
    ap.add_argument("--ib-busbw", type=float, default=45.0, help="GB/s per GPU across nodes (NDR 400 Gb/s rail)")
    ap.add_argument("--nvlink-latency-us", type=float, default=3.0)
    ap.add_argument("--ib-latency-us", type=float, default=8.0)
    ap.add_argument("--bucket-mib", type=float, default=16.0, help="sllm's bucket: 4 Mi floats")
    a = ap.parse_args()

    grad = a.params * a.grad_bytes
    bucket = a.bucket_mib * 2**20
    compute = a.compute_ms / 1e3
    rows = [("1 GPU", 1, None), ("2 GPUs, NVLink", 2, "nv"), ("8 GPUs, NVLink", 8, "nv"),
            ("2 nodes x 8, InfiniBand", 16, "ib"), ("4 nodes x 8, InfiniBand", 32, "ib")]
    print(f"Gradient: {a.params:,} x {a.grad_bytes} B = {grad / 2**20:.0f} MiB per step; compute step "
          f"{a.compute_ms:g} ms for {a.tokens_per_gpu:,} tokens per GPU; NVLink busbw {a.nvlink_busbw:g} GB/s, "
          f"IB {a.ib_busbw:g} GB/s per GPU.\n")
    print("| ranks | sent per rank per step | all-reduce ms | step ms (sllm: after backward) | tokens/s | "
          "scaling efficiency | step ms (overlapped bound) | ZeRO-1 extra ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, link in rows:
        busbw = a.nvlink_busbw if link == "nv" else a.ib_busbw
        lat = a.nvlink_latency_us if link == "nv" else a.ib_latency_us
        ar = allreduce_s(grad, n, busbw, lat, bucket)
        sent = grad * 2 * (n - 1) / n
        step = compute + ar
        overlapped = max(compute, ar)
        zero_extra = 0.0 if n == 1 else grad * (n - 1) / n / (busbw * 1e9)
        print(f"| {name} | {sent / 2**20:.0f} MiB | {ar * 1e3:.1f} | {step * 1e3:.1f} | "
              f"{n * a.tokens_per_gpu / step:,.0f} | {compute / step:.0%} | {overlapped * 1e3:.1f} | {zero_extra * 1e3:.1f} |")


if __name__ == "__main__":
    main()

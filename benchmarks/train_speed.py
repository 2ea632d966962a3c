"""Training speed of the paper's PaSST variants on this machine (Table 1 of arXiv 2110.05069, as ratios).

For each variant at real size on 128x998 spectrograms: training specs/s, peak memory, FLOPs per step (counted
by torch.utils.flop_counter, attention included) and the achieved GFLOP/s next to the machine's fp32 GEMM
peak, which is measured in the same run. Each variant runs in its own process so that its peak memory is its
own.

    python benchmarks/train_speed.py                           # all variants, batch 2, eager, fp32
    python benchmarks/train_speed.py --compile                 # the same with torch.compile
    python benchmarks/train_speed.py --precision bf16-mixed    # bf16 autocast (the CPU form of AMP)
    python benchmarks/train_speed.py --variants passt_s --batch-size 8 --threads 2
"""
import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from statistics import median

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from torch.utils import flop_counter  # noqa: E402

from models.passt import get_model  # noqa: E402

log = logging.getLogger("train_speed")

# name: (description, get_model kwargs) -- the rows of the paper's Table 1
VARIANTS = {
    "passt_b": ("PaSST-B, no patchout (the AST cost)", dict(arch="passt_s_swa_p16_128_ap476")),
    "passt_s": ("PaSST-S, s_patchout_t=40, s_patchout_f=4",
                dict(arch="passt_s_swa_p16_128_ap476", s_patchout_t=40, s_patchout_f=4)),
    "passt_s_n": ("PaSST-S-N, stride 16, s_patchout_t=25, s_patchout_f=4",
                  dict(arch="passt_s_swa_p16_s16_128_ap473", s_patchout_t=25, s_patchout_f=4)),
    "passt_u": ("PaSST-U, u_patchout=400", dict(arch="passt_s_swa_p16_128_ap476", u_patchout=400)),
    "passt_s_l": ("PaSST-S-L, depth 7, s_patchout_t=40, s_patchout_f=4",
                  dict(arch="passt_l_kd_p16_128_ap47", s_patchout_t=40, s_patchout_f=4)),
}


def gemm_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of a square matmul in ``dtype`` (the machine's practical GEMM peak)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                                  **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """torch's FLOP counter, also counting the CPU flash-attention kernels that SDPA dispatches to on CPU.

    torch registers its SDPA formulas only for the CUDA kernels; without this mapping the attention of a CPU
    step would count as zero. The formulas are torch's own (the backward counts the recomputed scores, as it
    does for the CUDA flash kernel)."""
    aten = torch.ops.aten
    return flop_counter.FlopCounterMode(display=False, custom_mapping={
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward_flops,
    })


def make_train_step(model: torch.nn.Module, batch_size: int, precision: str, optimizer_kind: str,
                    compile_model: bool = False):
    """A closure running one AdamW training step of ``model`` on a random 128x998 batch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=1e-4, **{optimizer_kind: True})
    step_model = torch.compile(model) if compile_model else model
    x = torch.randn(batch_size, 1, 128, 998)
    y = (torch.rand(batch_size, model.num_classes) < 0.02).float()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            logits, _ = step_model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        optimizer.step()

    return train_step


def measure_variant(name: str, batch_size: int, steps: int, warmup: int, compile_model: bool,
                    precision: str = "32", optimizer_kind: str = "fused") -> dict:
    """Train steps of one variant: specs/s, FLOPs per step, achieved GFLOP/s, peak RSS."""
    description, kwargs = VARIANTS[name]
    torch.manual_seed(0)
    model = get_model(pretrained=False, **kwargs).train()
    train_step = make_train_step(model, batch_size, precision, optimizer_kind)
    with flop_counter_mode() as counter:  # counted eagerly: compiling changes how, not what, is computed
        train_step()
    flops = counter.get_total_flops()
    if compile_model:  # (replacing the eager step frees its optimizer state: peak memory stays this setup's)
        train_step = make_train_step(model, batch_size, precision, optimizer_kind, compile_model=True)
    for _ in range(warmup):
        train_step()
    # Each step is timed next to GEMM peak measurements, so that a busy neighbour on a shared machine
    # slows both alike; the fraction of peak is the median of the per-step ratios.
    times, fractions, bf16_fractions = [], [], []
    for _ in range(steps):
        start = time.perf_counter()
        train_step()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        fractions.append(flops / elapsed / 1e9 / gemm_peak_gflops())
        if precision == "bf16-mixed":
            bf16_fractions.append(flops / elapsed / 1e9 / gemm_peak_gflops(torch.bfloat16))
    step_time = median(times)
    return dict(variant=name, description=description, batch_size=batch_size, step_s=step_time,
                specs_per_s=batch_size / step_time, flops_per_step=flops, gflops=flops / step_time / 1e9,
                fraction_of_peak=median(fractions),
                fraction_of_bf16_peak=median(bf16_fractions) if bf16_fractions else None,
                tokens=model.sequence_length(128, 998, training=True),
                peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    parser.add_argument("--precision", choices=["32", "bf16-mixed"], default="32")
    parser.add_argument("--optimizer", choices=["fused", "foreach"], default="fused",
                        help="AdamW implementation (fused is the training module's)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant, print JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.one:
        print(json.dumps(measure_variant(args.one, args.batch_size, args.steps, args.warmup, args.compile,
                                         args.precision, args.optimizer)))
        return

    peak = gemm_peak_gflops()
    log.info("fp32 GEMM peak (2048x2048 matmul, %d threads): %.0f GFLOP/s", args.threads, peak)
    rows = []
    for name in args.variants:
        command = [sys.executable, __file__, "--one", name, "--batch-size", str(args.batch_size), "--steps",
                   str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                   "--precision", args.precision, "--optimizer", args.optimizer]
        command += ["--compile"] if args.compile else []
        log.info("measuring %s ...", name)
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    peak = max(peak, gemm_peak_gflops())
    mixed = args.precision == "bf16-mixed"
    base = next((r for r in rows if r["variant"] == "passt_b"), rows[0])
    print(f"\nPaSST training speed on CPU ({args.threads} threads, batch {args.batch_size}, 128x998, "
          f"{'torch.compile' if args.compile else 'eager'}, {args.precision}, AdamW {args.optimizer})")
    print(f"fp32 GEMM peak measured in this run: {peak:.0f} GFLOP/s (best 2048x2048 matmul)"
          + (f"; bf16: {gemm_peak_gflops(torch.bfloat16):.0f} GFLOP/s" if mixed else ""))
    print("'% peak' divides each step's GFLOP/s by a GEMM measurement taken right after that step"
          + (" (fp32 peak, then the bf16 peak)" if mixed else ""))
    bf16_header = f" {'% bf16':>7}" if mixed else ""
    header = (f"{'variant':<10} {'tokens':>6} {'specs/s':>8} {'x AST':>6} {'GFLOP/step':>10} {'GFLOP/s':>8} "
              f"{'% peak':>7}{bf16_header} {'peak RSS':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        bf16 = f" {100 * r['fraction_of_bf16_peak']:>6.0f}%" if mixed else ""
        print(f"{r['variant']:<10} {r['tokens']:>6} {r['specs_per_s']:>8.2f} "
              f"{r['specs_per_s'] / base['specs_per_s']:>6.2f} {r['flops_per_step'] / 1e9:>10.0f} "
              f"{r['gflops']:>8.0f} {100 * r['fraction_of_peak']:>6.0f}%{bf16} "
              f"{r['peak_rss_gib']:>7.2f}GiB")
    print("\n" + "\n".join(f"{r['variant']:<10} {r['description']}" for r in rows))


if __name__ == "__main__":
    main()

"""Paper Fig. 2: one distillation epoch's time and peak memory for three ways to use resolutions.

- ``single``: the teacher (frozen encoder + 1×1 conv) and the binary student both see the base resolution;
- ``candle``: CANDLE's multi-resolution teacher (Alg. 2: the frozen encoder sees S/B/L, no backward through
  it), the student sees the base resolution only;
- ``naive``: both networks see every resolution (the student trains on each; loss summed, one backward).

Each case runs in its own process, so peak memory is that case's alone: peak RSS on CPU
(``ru_maxrss``), ``torch.cuda.max_memory_allocated`` on GPU. Prints the ratios against ``single`` (paper's
claim: CANDLE ≈ single, naive ≈ linear in the number of resolutions; targets here CANDLE ≤ 1.3×,
naive ≥ 2.5×) and writes ``benchmarks/results/multires-<device-slug>.json`` (CPU: model name, family and model).

Default on CPU: the paper's networks (ResNet-152 teacher with random weights — timing does not depend on
the values — and ReActNet-A student) at 32/64/128 (base 64; ReActNet-A needs multiples of 32 — the teacher's pixel budget over
the three inputs is 5.25× the base, the paper's 128/224/480 give 5.93×), batch 8; ``--paper`` uses the
paper's 128/224/480, batch 64 (GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = ("single", "candle", "naive")
HERE = Path(__file__).resolve().parent


def device_slug(device: str) -> str:
    """``cpu-<model name>-<family>-<model>`` (``bench_kernels``' CPU identity: VMs named "AMD EPYC" came as
    several machine kinds, whose figures must not overwrite each other's) or the CUDA device's name, as a slug.
    Files written before the family and model were part of the name lack them. (Imported here: the case
    processes, whose peak memory is measured, do not load the kernel benchmark's modules.)"""
    import torch
    from bench_kernels import cpu_id, device_name, slug

    if device.startswith("cuda"):
        return slug(torch.cuda.get_device_name(0))[:60]
    return "-".join(filter(None, ("cpu", slug(device_name())[:60], cpu_id())))


def run_case(args: argparse.Namespace) -> dict:
    import torch
    from ltbench.candle.distill import AdversarialBalancer, candle_objective, kl_guide
    from ltbench.candle.teacher import MultiResTeacher, resize_image
    from torchvision.models import resnet152

    from ltbench.backbones import create_backbone

    torch.manual_seed(0)
    dev = torch.device(args.device)
    res = tuple(args.resolutions)
    base = args.base

    class Encoder(torch.nn.Module):  # torchvision ResNet-152 up to layer4 (the frozen teacher encoder)
        def __init__(self):
            super().__init__()
            m = resnet152(weights=None)
            self.body = torch.nn.Sequential(*list(m.children())[:-2])

        def forward_feature_map(self, x):
            return self.body(x)

    student = create_backbone(args.student, args.classes, 3).to(dev)
    width = student.num_features
    teacher_res = (base,) if args.case == "single" else res
    teacher = MultiResTeacher(Encoder(), 2048, width, args.classes, teacher_res, base).to(dev).eval()
    ab = AdversarialBalancer().to(dev)
    opt = torch.optim.Adam([*student.parameters(), *ab.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(args.batch, 3, base, base, generator=gen), torch.randint(0, args.classes, (args.batch,)))
        for _ in range(args.steps)
    ]
    singles = {
        r: MultiResTeacher(teacher.encoder, 2048, width, args.classes, (r,), r).to(dev).eval() for r in res
    }

    def step(x):
        x = x.to(dev, non_blocking=True)
        if args.case == "naive":  # every resolution is a training input for both networks
            total = 0.0
            for r in res:
                xr = resize_image(x, (r, r))
                with torch.no_grad():
                    logits_t, feat_t = singles[r].forward_distill(xr)
                total = total + candle_objective(student, xr, feat_t, kl_guide(logits_t), ab).total
        else:
            with torch.no_grad():
                logits_t, feat_t = teacher.forward_distill(x)
            total = candle_objective(student, x, feat_t, kl_guide(logits_t), ab).total
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step(data[0][0])  # warm-up (allocator, kernel selection)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.perf_counter(), time.process_time()
    for x, _ in data:
        step(x)
    sync()
    epoch_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    # cpu_s (process CPU time) is robust to other processes sharing the cores; epoch_s is wall-clock
    return {
        "id": args.case,
        "epoch_s": round(epoch_s, 3),
        "cpu_s": round(cpu_s, 3),
        "peak_mem_mb": round(peak, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--paper", action="store_true", help="paper resolutions 128/224/480 (base 224), batch 64")
    p.add_argument("--resolutions", type=int, nargs="+", default=None)
    p.add_argument("--base", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=3, help="steps in the timed 'epoch'")
    p.add_argument("--student", default="reactnet-a")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--case", choices=CASES, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.paper:
        args.resolutions, args.base, args.batch = (
            args.resolutions or [128, 224, 480],
            args.base or 224,
            args.batch or 64,
        )
    args.resolutions = args.resolutions or [32, 64, 128]
    args.base = args.base or 64
    args.batch = args.batch or 8
    if args.case:
        print(json.dumps(run_case(args)))
        return
    cases = []
    for case in CASES:
        cmd = [sys.executable, __file__, "--case", case, "--device", args.device, "--steps", str(args.steps)]
        cmd += [
            "--resolutions",
            *map(str, args.resolutions),
            "--base",
            str(args.base),
            "--batch",
            str(args.batch),
        ]
        cmd += ["--student", args.student, "--classes", str(args.classes)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if out.returncode != 0:
            sys.exit(f"case {case} failed:\n{out.stderr[-3000:]}")
        cases.append(json.loads(out.stdout.strip().splitlines()[-1]))
        c = cases[-1]
        print(
            f"{case:>7}: epoch {c['epoch_s']:.2f} s (CPU {c['cpu_s']:.2f} s), peak {c['peak_mem_mb']:.0f} MiB"
        )
    ref = cases[0]
    ratios = {
        c["id"]: {
            "time": round(c["epoch_s"] / ref["epoch_s"], 3),
            "cpu": round(c["cpu_s"] / ref["cpu_s"], 3),
            "mem": round(c["peak_mem_mb"] / ref["peak_mem_mb"], 3),
        }
        for c in cases
    }
    for cid in ("candle", "naive"):
        r = ratios[cid]
        print(f"{cid}/single: time ×{r['time']:.2f} (CPU time ×{r['cpu']:.2f}), peak memory ×{r['mem']:.2f}")
    print("targets: candle ≤ 1.3× single, naive ≥ 2.5× single (time)")
    slug = device_slug(args.device)
    result = {
        "device": slug,
        "setting": {
            "teacher": "resnet152 (random weights)",
            "student": args.student,
            "resolutions": args.resolutions,
            "base": args.base,
            "batch": args.batch,
            "steps_per_epoch": args.steps,
            "torch_threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        },
        "cases": cases,
        "ratios_vs_single": ratios,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"multires-{slug}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

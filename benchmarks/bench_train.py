"""Training throughput: images/s of one optimizer step (forward, backward, Adam) on synthetic batches.

Cases: ``reactnet-a`` at 224 (batch 8 on CPU, 64 on GPU), ``reactnet-a-tiny`` on digits' 8×8 (batch 64), and
``cnn-digits`` (batch 64) as the baseline the tiny binary net is compared with in the same run. CPU always;
CUDA too when present (fp32 and bf16 autocast). The device is named in every line.

    python benchmarks/bench_train.py [--steps N]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from ltbench.backbones import create_backbone


def images_per_s(name: str, in_chans: int, size: int, batch: int, device: str, steps: int, amp: bool = False):
    torch.manual_seed(0)
    model = create_backbone(name, 1000 if size == 224 else 10, in_chans).to(device).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, in_chans, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    devices = [
        ("cpu", f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    ]
    if torch.cuda.is_available():
        devices.append(("cuda", torch.cuda.get_device_name()))
    for dev, label in devices:
        big = 64 if dev == "cuda" else 8
        base = images_per_s("cnn-digits", 1, 8, 64, dev, args.steps * 4)
        tiny = images_per_s("reactnet-a-tiny", 1, 8, 64, dev, args.steps * 4)
        full = images_per_s("reactnet-a", 3, 224, big, dev, args.steps)
        print(f"[{label}] cnn-digits 8x8 b64: {base:.0f} img/s (baseline)")
        print(f"[{label}] reactnet-a-tiny 8x8 b64: {tiny:.0f} img/s ({tiny / base:.2f}x cnn-digits)")
        print(f"[{label}] reactnet-a 224 b{big}: {full:.1f} img/s")
        if dev == "cuda":
            amp = images_per_s("reactnet-a", 3, 224, big, dev, args.steps, amp=True)
            print(f"[{label}] reactnet-a 224 b{big} bf16 autocast: {amp:.1f} img/s ({amp / full:.2f}x fp32)")


if __name__ == "__main__":
    main()

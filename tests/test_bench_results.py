"""The README's performance table (ltbench.bench_results) says met / missed against each target as the issue
states it, from the figures in the result files."""

from __future__ import annotations

import json

from ltbench.bench_results import performance_table_md


def _case(cid, shape, threads, ratio=1.0, baseline="b", **extra):
    return {"id": cid, "shape": shape, "threads": threads, "ours_s": 0.01, "baseline": baseline,
            "baseline_s": 0.01 * ratio, "ratio": ratio, "load_average": 0.5, **extra}  # fmt: skip


def test_cells_compare_each_figure_with_its_target(tmp_path):
    cases = [
        _case("T1", "reactnet-a-tiny 8² b64 fwd+bwd", 1, 3.01, bound_ratio=3.5),
        _case("T1", "reactnet-a 32² b64 fwd+bwd", 1, 2.99),
        _case("L1", "1x1 conv", 1, us_per_call=10.4),
        _case("C1", "S1 1x1x1", 1, pct_of_limit=60.0),
        _case("C1", "S2 1x1x1", 1, pct_of_limit=59.6),
        _case("C1", "S1 1x1x1", 2, speedup_vs_1_thread=1.8, paired_s=0.01),
        _case("C1", "S2 1x1x1", 2, speedup_vs_1_thread=1.79, paired_s=0.01),
        _case("C2", "block7 1x1 b1 512->512", 1, 11.9),
        _case("C3", "net", 1, 2.9, baseline="torch-fp32-compile(prebinarized)", compile_s=5.0),
        _case("B1", "build", 2, 2.0),
    ]
    doc = {"device": "CPU X", "path": "avx2", "clock_ghz": 3.0, "limit_bmac_per_cycle_core": 100.0,
           "date": "2026-12-07", "cases": cases}  # fmt: skip
    (tmp_path / "cpu-x-avx2.json").write_text(json.dumps(doc))
    (tmp_path / "multires-cpu-x.json").write_text(json.dumps({"cases": []}))  # not a kernel-bench file
    rows = {}
    for line in performance_table_md(tmp_path).splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.setdefault(cells[0], []).append(cells[-1])
    header = performance_table_md(tmp_path).splitlines()[0]
    assert header.count("CPU X") == 1 and "2026-12-07" in header and "load 0.5–0.5" in header
    assert rows["T1"][0].endswith("— met") and "bound it to 3.50×" in rows["T1"][0]
    assert rows["T1"][1].endswith("— missed")
    assert rows["L1"] == ["10.4 µs — missed"]
    assert rows["C1"][0] == "S1 60, S2 60 — missed on S2"  # 59.6 prints as 60 but is under the target
    assert rows["C1"][1] == "S1 1.80, S2 1.79 — missed on S2"
    assert rows["C2"] == ["1×1 11.9 — missed on 1×1"]
    doc["cases"] = [c for c in cases if c["threads"] == 1] + [
        _case("C1", "S1 1x1x1", 2, speedup_vs_1_thread=1.9)
    ]
    (tmp_path / "cpu-x-avx2.json").write_text(json.dumps(doc))  # written before the paired rounds
    c1_threads = performance_table_md(tmp_path).splitlines()[6]
    assert c1_threads.rstrip(" |").endswith("S1 1.90 — met (1 and 2 threads timed in separate passes)")
    assert rows["C3"][0].endswith("— missed") and "compile 5.0 s excluded" in rows["C3"][0]
    assert rows["B1"][0].endswith("— met")
    assert rows["C4"] == ["—"]


def test_two_machine_kinds_under_one_model_name_get_their_own_file_and_column(tmp_path, monkeypatch):
    """VMs report "AMD EPYC" for Zen 3 and Zen 4 alike: the family and model keep their figures apart."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_kernels
    import bench_multires

    paths, multires = [], []
    for family, model in (("25", "1"), ("25", "17")):
        info = tmp_path / f"cpuinfo-{model}"
        info.write_text(
            f"processor\t: 0\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\n\n"
        )
        monkeypatch.setattr(bench_kernels, "CPUINFO", info)
        assert bench_kernels.cpu_id() == f"{family}-{model}"
        paths.append(bench_kernels.results_path().name)
        multires.append(bench_multires.device_slug("cpu"))  # the multires-<slug>.json of paper Fig. 2's plot
    assert paths[0] != paths[1] and paths[1].startswith("amd-epyc-25-17-")
    assert multires == ["cpu-amd-epyc-25-1", "cpu-amd-epyc-25-17"]
    doc = {"device": "AMD EPYC", "cpu_family_model": "25-17", "path": "avx512", "clock_ghz": 3.6,
           "limit_bmac_per_cycle_core": 328.0, "cases": []}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(doc))
    assert "AMD EPYC (family 25 model 17), avx512 path" in performance_table_md(tmp_path).splitlines()[0]


def test_c1_threading_ratio_times_each_round_at_the_thread_count_it_is_filed_under(monkeypatch):
    """C1's 2-thread ratio comes from rounds alternating between 1 and 2 threads: each round must run the plan
    at the count it is filed under (the plan repeats the thread count of its last call)."""
    from pathlib import Path
    from types import SimpleNamespace

    import torch

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_kernels

    clock, ran_at = [0.0], []

    class Plan:  # a kernel that scales perfectly: 1 ms a call at 1 thread, 0.5 ms at 2
        threads = 0

        def rerun(self, n):
            ran_at.append(self.threads)
            clock[0] += n * 1e-3 / self.threads

    plan = Plan()
    monkeypatch.setattr(bench_kernels, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    before = torch.get_num_threads()
    times = bench_kernels.paired_kernel_times(
        lambda: setattr(plan, "threads", torch.get_num_threads()), plan, (1, 2), t_call=1e-3, rounds=3
    )
    assert times == {1: 1e-3, 2: 0.5e-3}
    assert ran_at == [1, 2, 1, 2, 1, 2] and torch.get_num_threads() == before

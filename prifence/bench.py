"""``make bench``: every figure measured in one run, printed as tables.

The measurements themselves live beside what they measure (the cocotb
benches, the models); this module only runs them in order, prints what each
means against its bound or target, and writes everything to
``build/bench.json``.
"""

import json
import sys
import time
from pathlib import Path

__all__ = ["run_benchmarks"]

REPO = Path(__file__).resolve().parent.parent


def _section(title):
    print(f"\n== {title}", flush=True)


def _row(name, value, note=""):
    if isinstance(value, float):
        value = f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    print(f"  {name:<54} {value!s:>10}  {note}", flush=True)


def _pq(results, quick):
    from cocotb_tests.bench import pq_throughput
    _section("Page-request path (Verilator, memory taking every beat at once)")
    for width in (64, 128):
        fig = pq_throughput(width, requests=256 if quick else 1024, seed=1)
        results[f"pq_dw{width}"] = fig
        bound = fig["bound_records_per_clock"]
        _row(f"ingest while the FIFO fills, per clock ({width}-bit)",
             fig["ingest_first_fifo_per_clock"], "target 1.0")
        _row(f"ingest over the run, per clock ({width}-bit)", fig["ingest_per_clock"])
        _row(f"PQ records per clock ({width}-bit)", fig["pq_records_per_clock"],
             f"bound {bound} -> {fig['pq_records_per_clock'] / bound:.0%} of the bound")
        _row(f"request accepted -> record written ({width}-bit)",
             fig["request_to_record_latency"], "cycles")
        _row(f"request accepted -> record visible in pqt ({width}-bit)",
             fig["request_to_visible_latency"], "cycles")


def _cq(results, quick):
    from cocotb_tests.cq_figures import cq_rtl_figures
    _section("Command queue (Verilator)")
    fig = cq_rtl_figures(seed=1)
    results["cq"] = fig
    for width in (64, 128):
        rate, bound = fig[f"prgr_per_clock_{width}"], fig[f"prgr_bound_per_clock_{width}"]
        _row(f"ATS.PRGR responses per clock ({width}-bit)", rate,
             f"bound {bound} -> {rate / bound:.0%} of the bound")
    _row("fence after last response, AV=0 (cycles)", fig["fence_after_response_av0"], "target <= 4")
    _row("fence after last response, AV=1 (cycles)", fig["fence_after_response_av1"],
         "includes the memory's write answer")
    _row("AV store issued after last response (cycles)", fig["fence_store_after_response"],
         "target <= 4")
    _row("AV store answered after last response (cycles)",
         fig["fence_store_answer_after_response"], "memory latency")
    _row("fence with no prior work, after fetch, AV=0", fig["fence_after_fetch_av0"], "target <= 8")
    _row("fence with no prior work, after fetch, AV=1", fig["fence_after_fetch_av1"], "target <= 8")
    _row("doorbell (cqt write starts) to first response", fig["doorbell_to_first_response"],
         "cycles, AXI4-Lite write included")
    if fig.get("missed"):
        print(f"  MISSED targets: {', '.join(fig['missed'])}")


def _sim_speed(results, quick):
    from cocotb_tests.sim_speed import sim_speed
    _section("Simulator speed: the same page-request stream bench")
    fig = sim_speed(n_verilator=500 if quick else 2000, n_amaranth=100 if quick else 300)
    results["sim_speed"] = fig
    _row("Verilator + cocotb, cycles/s", fig["verilator"]["cycles_per_s"])
    _row("Amaranth simulator, cycles/s", fig["amaranth"]["cycles_per_s"])
    _row("ratio (Verilator / Amaranth)", fig["ratio"])


def _cosim(results, quick):
    from cocotb_tests.cosim.bench import cosim_speed
    _section("Co-simulation: driver + devices + checker against the RTL (scenario 'steady', seed 1)")
    fig = cosim_speed("steady", 1, repeats=1 if quick else 3)
    results["cosim"] = fig
    _row("RTL: simulated cycles per run", fig["rtl_cycles"])
    _row("RTL: wall seconds per run", fig["rtl_wall_s"])
    _row("RTL: simulated cycles/s", fig["rtl_cycles_per_s"])
    _row("TLM: cycles per run", fig["tlm_cycles"])
    _row("TLM: wall seconds per run", fig["tlm_wall_s"])
    _row("TLM speed-up over the RTL (wall time)", fig["rtl_wall_s"] / max(fig["tlm_wall_s"], 1e-9))


def _tlm(results, quick):
    from sw_model.bench import seeds_per_second
    _section("Transaction-level engine: random scenario seeds")
    fig = seeds_per_second(2.0 if quick else 6.0)
    results["tlm_seeds"] = fig
    for key, value in fig.items():
        if isinstance(value, (int, float)):
            _row(key.replace("_", " "), float(value) if isinstance(value, float) else value)


def _synth(results, quick):
    from prifence.synth import last_results
    _section("FPGA implementation (last `prifence synth` run of the top level)")
    found = last_results()
    results["synth"] = found
    if not found:
        print("  none yet: run `prifence synth --target ecp5` / `--target ice40` (minutes each)")
    for target, r in found.items():
        status = "meets" if r["met"] else "MISSES"
        _row(f"{target}: Fmax MHz", r["achieved_mhz"], f"{status} {r['requested_mhz']:.0f} MHz")
        _row(f"{target}: LUTs / flip-flops / block RAMs",
             f"{r['luts']}/{r['flip_flops']}/{r['block_rams']}")


SECTIONS = (("pq", _pq), ("cq", _cq), ("sim_speed", _sim_speed), ("cosim", _cosim),
            ("tlm", _tlm), ("synth", _synth))


def run_benchmarks(*, quick=False, only=None):
    """Run every benchmark section (or those named in ``only``); returns an exit status."""
    from prifence.toolchain import setup_verilator
    setup_verilator()
    results, failed = {}, []
    start = time.monotonic()
    for name, section in SECTIONS:
        if only and name not in only:
            continue
        try:
            section(results, quick)
        except Exception as exc:       # report and go on: one broken bench must not hide the rest
            failed.append(name)
            print(f"  FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    out = REPO / "build" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nall figures in {out} ({time.monotonic() - start:.0f} s)")
    if failed:
        print(f"benchmark sections that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0

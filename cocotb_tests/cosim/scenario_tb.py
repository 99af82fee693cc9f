"""The cocotb test that runs scenarios of :mod:`sw_model.scenarios` on the
Verilated RTL, several seeds in one simulation.

The job comes in through ``PRIFENCE_COSIM_JOB`` (a JSON file written by
:func:`cocotb_tests.cosim.run.run_rtl`): scenario, policy, seeds, scale,
options, where to write results.  For each seed the bench is reset and the RAM
cleared, the scenario runs through :func:`sw_model.scenarios.run_scenario`
with a :class:`~cocotb_tests.cosim.engine.CocotbEngine`, and one JSON line is
appended to the results file at once (the host shows progress from it).  A
run's trace is written when it broke an invariant, or for every run with
``"trace": "all"``.  ``"lost_writes"`` (address ranges) makes the memory
acknowledge and drop the hardware's writes there, to show the checker
catches a memory that does not hold what the hardware published.
"""

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.task import bridge

from prifence.check import load_policy, load_scenario
from sw_model.scenarios import run_scenario

from .engine import CocotbEngine, CosimBench
from .run import result_record
from .trace import Trace, TracingObserver, traced_policy

JOB_ENV = "PRIFENCE_COSIM_JOB"


@cocotb.test()
async def run_job(dut):
    """Run every seed of the job; a broken invariant is a result, not a test failure."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    policy = traced_policy(load_policy(job["policy"]))
    scenario = load_scenario(job["scenario"])
    results = Path(job["results"])
    trace_dir = Path(job["trace_dir"])
    bench = CosimBench(dut)
    for seed in job["seeds"]:
        await bench.reset()
        for lo, hi in job.get("lost_writes", ()):
            bench.mem.lose_writes(lo, hi)
        made = {}

        def factory(*, seed, observer):
            if job.get("trace") == "none":
                trace = None
            else:
                trace = Trace(bench.cycle)
                observer = TracingObserver(observer, trace)
            engine = CocotbEngine(bench=bench, seed=seed, observer=observer, trace=trace)
            made["engine"] = engine
            return engine

        started = time.perf_counter()
        sampled = bench.sampled_cycles
        result = error = None
        try:
            result = await bridge(run_scenario)(
                scenario, policy, seed, engine_factory=factory, scale=job.get("scale", 1.0),
                options=job.get("options") or None, until=job.get("until", 3_000_000))
        except Exception as exc:         # noqa: BLE001 - a crash of a model is reported, not hidden
            error = f"{type(exc).__name__}: {exc}"
        engine = made.get("engine")
        record = result_record(result, error=error)
        if result is None:
            record.update(scenario=job["scenario"], policy=job["policy"], seed=seed,
                          cycles=engine.now() if engine is not None else 0)
        record["wall_s"] = round(time.perf_counter() - started, 3)
        record["monitor_cycles"] = bench.sampled_cycles - sampled
        record["faults"] = [list(f) for f in bench.mem.faults]
        keep = job.get("trace", "violations")
        if engine is not None and engine.trace is not None and (
                keep == "all" or (keep == "violations" and not record["ok"])):
            path = trace_dir / f"trace-{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(engine.trace.as_json()))
            record["trace"] = str(path)
        with results.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

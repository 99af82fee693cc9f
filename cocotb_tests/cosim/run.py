"""Run scenarios on the RTL (one Verilator simulation for all seeds) or on the
transaction-level model, with the same result records.

:func:`run_rtl` builds (or reuses) the Verilated model through
:func:`cocotb_tests.sim.build`, writes a job file, runs the cocotb test
:func:`cocotb_tests.cosim.scenario_tb.run_job` and reads one JSON record per
seed back as the simulation produces them (``progress(record, done, total)``
is called for each).  :func:`run_tlm` runs the same scenario, policy and
seeds in this process on :class:`sw_model.tlm.TlmEngine`.

A record: ``scenario``, ``policy``, ``seed``, ``ok``, ``cycles``, ``wall_s``,
``counts``, ``violation`` (``invariant``, ``message``, ``cycle``, ``objects``)
or None, ``error`` (a model crash) or None, ``trace`` (path of the trace JSON,
when kept).
"""

import json
import os
import threading
import time
from pathlib import Path

from cocotb_tests.sim import REPO, TOP, build

__all__ = ["run_rtl", "run_tlm", "result_record", "CosimError", "MODULE"]

MODULE = "cocotb_tests.cosim.scenario_tb"


class CosimError(RuntimeError):
    """The simulation did not produce a result for every seed."""


def result_record(result, *, error=None):
    """The JSON-able record of a :class:`sw_model.scenarios.Result` (both engines)."""
    v = result.violation if result is not None else None
    return {
        "scenario": result.scenario if result is not None else None,
        "policy": result.policy if result is not None else None,
        "seed": result.seed if result is not None else None,
        "ok": bool(result is not None and result.ok and error is None),
        "cycles": result.cycles if result is not None else None,
        "wall_s": round(result.wall_s, 3) if result is not None else None,
        "counts": result.counts if result is not None else {},
        "violation": None if v is None else {
            "invariant": v.invariant, "message": v.message, "cycle": v.cycle, "seed": v.seed,
            "objects": [repr(o) for o in v.objects]},
        "error": error,
    }


def _absolute(spec):
    """``spec`` with its file part made absolute (a shipped name unchanged)."""
    path, sep, rest = spec.partition(".py")
    if not sep:
        return spec
    return str(Path(path + ".py").resolve()) + rest


def _failure_of(results_xml):
    """The message of the failed cocotb test in ``results_xml``, if any."""
    import xml.etree.ElementTree as ET
    try:
        root = ET.parse(results_xml).getroot()
    except (OSError, ET.ParseError):
        return None
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                text = (node.get("message") or "") + "\n" + (node.text or "")
                return text.strip().splitlines()[-1] if text.strip() else tag
    return None


def _read_records(path, seen):
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    fresh = [json.loads(line) for line in lines[seen:] if line.strip()]
    return fresh


def run_rtl(scenario, policy, seeds, *, scale=1.0, options=None, waves=False, trace="violations",
            workdir=None, params=None, progress=None, until=3_000_000, lost_writes=()):
    """Run ``scenario`` (a shipped name or a scenario file) with ``policy`` (a
    name or ``file.py:Class``) for every seed of ``seeds`` on the RTL, in one
    simulation.  ``waves`` records an FST (``workdir/sim/dump.fst``);
    ``trace`` is "violations", "all" or "none".  Returns the records in seed
    order; raises :class:`CosimError` if the simulator stopped early.
    ``lost_writes``: address ranges whose hardware writes the memory drops
    (see :meth:`~cocotb_tests.cosim.engine.CosimMemory.lose_writes`)."""
    from cocotb_tools.runner import get_runner

    seeds = [int(s) for s in seeds]
    # The simulator runs in its own folder: files are named absolutely.
    scenario, policy = _absolute(scenario), _absolute(policy)
    sim = build(params, waves=waves)
    workdir = Path(workdir).resolve() if workdir is not None else (
        REPO / "build" / "cosim" / f"run-{os.getpid()}-{int(time.time() * 1000)}")
    workdir.mkdir(parents=True, exist_ok=True)
    results = workdir / "results.jsonl"
    if results.exists():
        results.unlink()
    job = {"scenario": scenario, "policy": policy, "seeds": seeds, "scale": scale,
           "options": options or {}, "results": str(results), "trace_dir": str(workdir),
           "trace": trace, "until": until, "lost_writes": [list(r) for r in lost_writes]}
    job_path = workdir / "job.json"
    job_path.write_text(json.dumps(job, indent=1))
    test_dir = workdir / "sim"
    test_dir.mkdir(exist_ok=True)
    outcome = {}

    def simulate():
        runner = get_runner("verilator")
        try:
            runner.test(test_module=MODULE, hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
                        testcase=["run_job"], seed=seeds[0] if seeds else 0,
                        build_dir=sim.directory, test_dir=test_dir,
                        results_xml=str(test_dir / "results.xml"),
                        extra_env={"PRIFENCE_COSIM_JOB": str(job_path),
                                   "PRIFENCE_PARAMS": json.dumps(sim.params)},
                        waves=waves, log_file=test_dir / "sim.log")
        except (Exception, SystemExit) as exc:     # the record count below tells
            outcome["exc"] = exc

    thread = threading.Thread(target=simulate, name="prifence-cosim", daemon=True)
    thread.start()
    records = []
    while True:
        alive = thread.is_alive()
        for record in _read_records(results, len(records)):
            records.append(record)
            if progress is not None:
                progress(record, len(records), len(seeds))
        if not alive:
            break
        thread.join(0.25)
    if len(records) != len(seeds):
        reason = _failure_of(test_dir / "results.xml") or repr(outcome.get("exc"))
        raise CosimError(f"the simulation stopped after {len(records)} of {len(seeds)} seeds "
                         f"({reason}); log: {test_dir / 'sim.log'}")
    for record in records:
        record["engine"] = "rtl"
    return records


def run_tlm(scenario, policy, seeds, *, scale=1.0, options=None, trace="violations",
            workdir=None, progress=None, until=3_000_000):
    """As :func:`run_rtl`, on the transaction-level engine in this process."""
    from prifence.check import load_policy, load_scenario
    from sw_model.scenarios import run_scenario
    from sw_model.tlm import TlmEngine

    from .trace import Trace, TracingObserver, traced_policy, violation_fields

    trace_mode = trace
    policy_cls = traced_policy(load_policy(policy))
    key = load_scenario(scenario)
    workdir = Path(workdir) if workdir is not None else None
    records = []
    seeds = [int(s) for s in seeds]
    for seed in seeds:
        made = {}

        def factory(*, seed, observer):
            holder = {}
            trace = None if trace_mode == "none" else Trace(lambda: holder["engine"].now())
            engine = TlmEngine(seed=seed, observer=observer if trace is None
                               else TracingObserver(observer, trace))
            holder["engine"] = engine
            engine.trace = trace
            made["engine"] = engine
            return engine

        started = time.perf_counter()
        result = run_scenario(key, policy_cls, seed, engine_factory=factory, scale=scale,
                              options=options or None, until=until)
        record = result_record(result)
        record["wall_s"] = round(time.perf_counter() - started, 4)
        record["engine"] = "tlm"
        trace_obj = made["engine"].trace
        if not result.ok and trace_obj is not None:
            trace_obj.add("violation", **violation_fields(result.violation))
        if workdir is not None and (trace == "all" or (trace == "violations" and not record["ok"])):
            workdir.mkdir(parents=True, exist_ok=True)
            path = workdir / f"trace-{seed}.json"
            path.write_text(json.dumps(trace_obj.as_json()))
            record["trace"] = str(path)
        records.append(record)
        if progress is not None:
            progress(record, len(records), len(seeds))
    return records

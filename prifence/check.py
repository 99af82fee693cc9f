"""``prifence check`` and ``prifence diff``: validate a driver fence sequence
against the RTL (or the transaction-level model), report counter-examples.

This module orchestrates; the protocol lives in :mod:`sw_model` (driver,
devices, checker, scenarios) and :mod:`cocotb_tests.cosim` (the RTL engine).

Policies and scenarios are given as a shipped name or a file:

* policy ``seed`` / ``reviewed`` (:data:`sw_model.driver.POLICIES`), or
  ``path/to/file.py:ClassName``, a subclass of
  :class:`sw_model.driver.SeedDriver`;
* scenario a name of :data:`sw_model.scenarios.SCENARIOS`, or
  ``path/to/file.py`` (``path/to/file.py:function`` to pick another name than
  ``scenario``) defining ``async def scenario(ctx)`` written like the shipped
  ones (``ctx.add_device``, ``ctx.pri_cycle``, ``ctx.teardown``,
  ``ctx.replace``, ``ctx.finish``, ...).

:class:`SpecError` is bad input (exit status 2): it is raised before any
simulation starts.
"""

import importlib.util
import inspect
import sys
from pathlib import Path

__all__ = ["SpecError", "load_policy", "load_scenario", "policy_label", "scenario_label"]


class SpecError(ValueError):
    """A policy or scenario that cannot be used (one-line message)."""


def _load_module(path, what):
    path = Path(path)
    if path.suffix != ".py":
        raise SpecError(f"{what} file {str(path)!r} is not a .py file")
    if not path.is_file():
        raise SpecError(f"{what} file {str(path)!r} does not exist")
    name = f"prifence_user_{what}_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:        # noqa: BLE001 - any import error is the user's file
        line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        raise SpecError(f"{what} file {str(path)!r} does not import{line}: "
                        f"{type(exc).__name__}: {exc}") from None
    sys.modules[name] = module
    return module


def load_policy(spec):
    """The driver class for ``spec`` (a policy name or ``file.py:ClassName``)."""
    from sw_model.driver import POLICIES, SeedDriver
    if not isinstance(spec, str) or not spec:
        raise SpecError(f"a policy is a name or file.py:ClassName, not {spec!r}")
    if spec in POLICIES:
        return POLICIES[spec]
    if ":" not in spec:
        raise SpecError(f"no policy {spec!r}: give one of {', '.join(POLICIES)} "
                        "or path/to/file.py:ClassName")
    path, _, cls_name = spec.rpartition(":")
    module = _load_module(path, "policy")
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise SpecError(f"policy file {path!r} has no class {cls_name!r}")
    if not (inspect.isclass(cls) and issubclass(cls, SeedDriver)):
        raise SpecError(f"{cls_name} in {path!r} is not a driver class "
                        "(a subclass of sw_model.driver.SeedDriver)")
    return cls


def load_scenario(spec):
    """The :func:`~sw_model.scenarios.run_scenario` name of ``spec``: a
    shipped name as it is, or a scenario file registered under
    ``file:<path>[:function]``."""
    from sw_model.scenarios import SCENARIOS
    if not isinstance(spec, str) or not spec:
        raise SpecError(f"a scenario is a name or a file, not {spec!r}")
    if spec in SCENARIOS:
        return spec
    if not spec.endswith(".py") and ".py:" not in spec:
        raise SpecError(f"no scenario {spec!r}: give one of {', '.join(SCENARIOS)} "
                        "or path/to/file.py")
    path, _, func = spec.partition(".py")
    path += ".py"
    func = func.lstrip(":") or "scenario"
    module = _load_module(path, "scenario")
    body = getattr(module, func, None)
    if body is None:
        raise SpecError(f"scenario file {path!r} has no function {func!r}")
    if not inspect.iscoroutinefunction(body):
        raise SpecError(f"{func} in {path!r} is not an async function (async def {func}(ctx))")
    key = f"file:{Path(path).resolve()}:{func}"
    SCENARIOS[key] = body
    return key


def policy_label(spec):
    return spec if ":" not in spec else spec.rpartition(":")[2]


def scenario_label(spec):
    return spec if not spec.endswith(".py") and ".py:" not in spec else Path(spec.partition(":")[0]).stem


# --- prifence check ----------------------------------------------------------------

def seeds_from(seed, count):
    """``--seed S`` alone: [S]; ``--seeds N``: N seeds from S (default 1)."""
    if count is None:
        return [seed if seed is not None else 1]
    base = seed if seed is not None else 1
    return list(range(base, base + count))


def _progress(stream):
    state = {"violations": 0}

    def show(record, done, total):
        if not record["ok"]:
            state["violations"] += 1
        v = record["violation"]
        what = ("ok" if record["ok"] else
                (f"ERROR {record['error']}" if record["error"] else f"invariant {v['invariant']}"))
        print(f"  seed {done}/{total} (seed {record['seed']}): {what}, {record['cycles']} cycles, "
              f"{record['wall_s']:.2f} s; violations so far: {state['violations']}",
              file=stream, flush=True)
    return show


def counter_example(record, trace_events, *, steps=12, events=16):
    """The text of a counter-example: invariant, seed, cycle, objects, the
    last driver steps and hardware events before it."""
    from cocotb_tests.cosim.trace import event_to_text
    v = record["violation"]
    lines = [f"invariant {v['invariant']} broken: {v['message']}",
             f"  scenario {record['scenario']}, policy {record['policy']}, seed {record['seed']}, "
             f"cycle {v['cycle']} ({record['engine']} engine)"]
    for obj in v["objects"]:
        lines.append(f"  involved: {obj}")
    cycle = v["cycle"]
    before = [e for e in trace_events if e[0] <= cycle and e[1] != "violation"]
    driver = [e for e in before if e[1] in ("step", "command", "reported")][-steps:]
    hardware = [e for e in before if e[1] in ("request", "pq_record", "dropped", "response",
                                              "fence", "cq_error", "device")][-events:]
    lines.append(f"  last {len(driver)} driver steps:")
    lines += [f"    {event_to_text(e)}" for e in driver]
    lines.append(f"  last {len(hardware)} hardware and device events:")
    lines += [f"    {event_to_text(e)}" for e in hardware]
    return "\n".join(lines)


def replay_command(scenario, policy, seed, engine, scale):
    cmd = f"prifence check --scenario {scenario} --policy {policy} --seed {seed} --engine {engine}"
    if scale != 1.0:
        cmd += f" --scale {scale}"
    return cmd + " --waves"


def write_report(record, *, scenario, policy, engine, scale, report_root, params=None, out=None):
    """The report folder of one run: timeline.png, report.txt, the trace and,
    on the RTL, the waveform of a replay of that seed alone.  Returns
    (folder, text)."""
    import json
    import shutil
    from pathlib import Path

    from cocotb_tests.cosim.run import run_rtl
    from prifence.timeline import draw_timeline

    seed = record["seed"]
    folder = Path(report_root) / f"{scenario_label(scenario)}-{policy_label(policy)}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    notes = []
    trace_path = record.get("trace")
    waves = None
    if engine == "rtl":
        replay = run_rtl(scenario, policy, [seed], scale=scale, waves=True, trace="all",
                         workdir=folder / "replay", params=params)[0]
        for name in ("dump.fst", "dump.vcd"):
            produced = folder / "replay" / "sim" / name
            if produced.exists():
                waves = folder / f"waves{produced.suffix}"
                shutil.move(str(produced), waves)
                break
        same = (replay["ok"], replay["cycles"], replay["violation"]) == (
            record["ok"], record["cycles"], record["violation"])
        notes.append("replay of the seed alone with waves: "
                     + ("identical run" if same else "DIFFERENT run (please report)"))
        trace_path = replay.get("trace") or trace_path
    events = json.loads(Path(trace_path).read_text()) if trace_path else []
    if trace_path:
        shutil.copy(trace_path, folder / "trace.json")
    title = (f"{scenario_label(scenario)} / {policy_label(policy)} / seed {seed} "
             f"({engine}): " + ("ok" if record["ok"] else
                                f"invariant {record['violation']['invariant']} broken"))
    picture = draw_timeline(events, folder / "timeline.png", title=title)
    if record["violation"] is not None:
        text = counter_example(record, events)
    elif record["error"]:
        text = f"run failed: {record['error']}"
    else:
        text = f"seed {seed}: no invariant broken ({record['cycles']} cycles)"
    lines = [text, "", f"report folder: {folder}", f"  timeline: {picture}"]
    if waves is not None:
        lines.append(f"  waveform: {waves}")
    elif engine == "tlm":
        lines.append("  waveform: none (transaction-level engine; replay with --engine rtl)")
    lines += [f"  {n}" for n in notes]
    lines.append(f"  replay: {replay_command(scenario, policy, seed, engine, scale)}")
    text = "\n".join(lines)
    (folder / "report.txt").write_text(text + "\n")
    return folder, text


def run_check(*, scenario, policy, seeds, engine="rtl", scale=1.0, waves=False, report_root=None,
              params=None, out=None, err=None):
    """``prifence check``: returns the exit status (0 no invariant broken, 1 a
    counter-example, 2 bad input)."""
    import sys
    from pathlib import Path

    from cocotb_tests.cosim.run import REPO, run_rtl, run_tlm

    out = out or sys.stdout
    err = err or sys.stderr
    load_policy(policy)             # SpecError before anything runs
    load_scenario(scenario)
    if engine not in ("rtl", "tlm"):
        raise SpecError(f"--engine is rtl or tlm, not {engine!r}")
    report_root = Path(report_root) if report_root else REPO / "build" / "check"
    print(f"prifence check: scenario {scenario}, policy {policy}, {len(seeds)} seed(s) "
          f"{seeds[0]}..{seeds[-1]}, {engine} engine", file=err, flush=True)
    kw = dict(scale=scale, progress=_progress(err),
              workdir=report_root / f"runs-{scenario_label(scenario)}-{policy_label(policy)}")
    if engine == "rtl":
        records = run_rtl(scenario, policy, seeds, params=params,
                          trace="all" if waves else "violations", **kw)
    else:
        records = run_tlm(scenario, policy, seeds, trace="all" if waves else "violations", **kw)
    bad = [r for r in records if not r["ok"]]
    cycles = sum(r["cycles"] or 0 for r in records)
    print(f"{len(records)} seed(s), {cycles} cycles: "
          + ("no invariant broken" if not bad else f"{len(bad)} run(s) broke an invariant"),
          file=out)
    chosen = bad[0] if bad else (records[0] if waves else None)
    if chosen is not None:
        _, text = write_report(chosen, scenario=scenario, policy=policy, engine=engine,
                               scale=scale, report_root=report_root, params=params)
        print(("first counter-example:\n" if bad else "") + text, file=out)
    return 1 if bad else 0


# --- prifence diff -------------------------------------------------------------------

def run_diff(*, scenario, policy, seeds, scale=1.0, report_root=None, params=None, out=None):
    """``prifence diff``: each seed on the RTL, its stimulus replayed on the
    transaction-level model (:mod:`cocotb_tests.cosim.diff`); prints the first
    divergence.  Exit status 0 when none diverged, 1 otherwise."""
    import json
    import sys
    from pathlib import Path

    from cocotb_tests.cosim.diff import STREAMS, first_divergence, replay_on_tlm, rtl_outputs
    from cocotb_tests.cosim.run import REPO, run_rtl

    out = out or sys.stdout
    load_policy(policy)
    load_scenario(scenario)
    root = Path(report_root) if report_root else REPO / "build" / "check"
    workdir = root / f"diff-{scenario_label(scenario)}-{policy_label(policy)}"
    records = run_rtl(scenario, policy, seeds, scale=scale, trace="all", workdir=workdir,
                      params=params, progress=_progress(sys.stderr))
    diverged = 0
    for record in records:
        events = json.loads(Path(record["trace"]).read_text())
        rtl = rtl_outputs(events)
        tlm = replay_on_tlm(events, record.get("faults", []), seed=record["seed"])
        sizes = ", ".join(f"{name} {len(rtl[name])}/{len(tlm[name])}" for name in STREAMS)
        print(f"seed {record['seed']}: {record['cycles']} cycles on the RTL; RTL/TLM counts: {sizes}",
              file=out)
        pqt = [(a[1], b[1]) for a, b in zip(rtl["pqt at fence completion"],
                                             tlm["pqt at fence completion"])]
        print("  (fence AV data, pqt) at completion, RTL vs TLM: "
              + ", ".join(f"{a}/{b[1]}" for a, b in pqt[:8]) + (" ..." if len(pqt) > 8 else ""),
              file=out)
        found = first_divergence(rtl, tlm)
        if found is None:
            print("  no divergence", file=out)
            continue
        diverged += 1
        name, index, x, y = found
        show = lambda item: "nothing (stream ended)" if item is None else f"{item[1]} at cycle {item[0]}"
        print(f"  first divergence in {name}, item #{index}:\n"
              f"    RTL: {show(x)}\n    TLM: {show(y)}", file=out)
    print(f"{len(records)} seed(s): " + ("no divergence" if not diverged
                                          else f"{diverged} diverged"), file=out)
    return 1 if diverged else 0

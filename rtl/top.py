# The top level of prifence (DESIGN.md §1 "Blocks and ports"): it only wires the
# blocks together and gives the Verilog module its pinned flat interface.

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import PageRequest, PrgResponse

from .axi_master import AxiMaster
from .bus import AxiLiteSignature, AxiSignature
from .command_queue import CommandQueue
from .fault_queue import FaultQueue
from .page_request_queue import PageRequestQueue
from .registers import RegisterFile
from .response_arbiter import ResponseArbiter

__all__ = ["PrifenceCore", "PrifenceTop", "generate_verilog", "lint_verilog", "LintReport",
           "LINT_WAIVERS", "TOP_NAME", "READ_CLIENTS", "WRITE_CLIENTS"]

TOP_NAME = "prifence_top"
#: The lint configuration (waivers of Amaranth code-generation noise).
LINT_WAIVERS = Path(__file__).with_name("lint.vlt")

#: Memory client ports, by name; the index is the AXI ID.
READ_CLIENTS = ("context", "command_fetch")
WRITE_CLIENTS = ("pq_record", "fq_record", "fence_store")


def _check_params(addr_width, data_width, ingress_depth, dc_cache_entries):
    if not isinstance(addr_width, int) or isinstance(addr_width, bool) or not 32 <= addr_width <= 64:
        raise TypeError(f"addr_width must be an integer in 32..64, not {addr_width!r}")
    if data_width not in (64, 128) or isinstance(data_width, bool):
        raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
    if not isinstance(ingress_depth, int) or isinstance(ingress_depth, bool) or ingress_depth < 2:
        raise TypeError(f"ingress_depth must be an integer of at least 2, not {ingress_depth!r}")
    if (not isinstance(dc_cache_entries, int) or isinstance(dc_cache_entries, bool)
            or dc_cache_entries < 1):
        raise TypeError(f"dc_cache_entries must be a positive integer, not {dc_cache_entries!r}")


class PrifenceCore(wiring.Component):
    """Every block of prifence, wired; structured ports.

    Parameters
    ----------
    addr_width : int
        Memory address width (32..64, default 56).
    data_width : int
        Memory data width, 64 or 128.
    ingress_depth : int
        Page-request ingress FIFO depth.
    dc_cache_entries : int
        Device-context cache entries.
    max_in_flight : int
        Page requests decided but not yet retired (a power of 2, default 16;
        :class:`rtl.page_request_queue.PageRequestQueue`).  The default keeps
        the 0.5 records/clock bound of DESIGN §1 against an 8-cycle memory.
    prefetch_depth : int or None
        Commands fetched ahead of execution (:class:`rtl.command_queue.CommandQueue`;
        default 8 at 64 bits, 16 at 128, which keeps the 0.5 or 1.0 commands/clock
        bound of DESIGN §1).

    Members
    -------
    s_axil : Out(AxiLiteSignature)      the register slave (DESIGN §2).
    m_axi : Out(AxiSignature)           the memory master.
    page_req : In(stream.Signature(PageRequest))
    prg_resp : Out(stream.Signature(PrgResponse))
        Auto-responses and ``ATS.PRGR`` responses, round-robin.
    irq_cq, irq_fq, irq_pq : Out(1)     the ipsr bits.

    Memory clients (AXI IDs): reads 0 device context, 1 command fetch; writes
    0 PQ records, 1 FQ records, 2 IOFENCE AV store.
    """

    def __init__(self, *, addr_width=56, data_width=64, ingress_depth=16, dc_cache_entries=8,
                 max_in_flight=16, prefetch_depth=None):
        _check_params(addr_width, data_width, ingress_depth, dc_cache_entries)
        self.addr_width, self.data_width = addr_width, data_width
        self.ingress_depth, self.dc_cache_entries = ingress_depth, dc_cache_entries
        self.max_in_flight, self.prefetch_depth = max_in_flight, prefetch_depth
        super().__init__({
            "s_axil": Out(AxiLiteSignature()),
            "m_axi": Out(AxiSignature(addr_width=addr_width, data_width=data_width)),
            "page_req": In(stream.Signature(PageRequest)),
            "prg_resp": Out(stream.Signature(PrgResponse)),
            "irq_cq": Out(1), "irq_fq": Out(1), "irq_pq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        mem = dict(addr_width=self.addr_width, data_width=self.data_width)
        m.submodules.regs = regs = RegisterFile(addr_width=self.addr_width)
        # Only the fence's AV store needs its lone W beat to leave with its
        # AW (IOFENCE latency); the record writers get a w.ready of flip-flops
        # and wready only.
        m.submodules.axi = axi = AxiMaster(
            read_clients=len(READ_CLIENTS), write_clients=len(WRITE_CLIENTS),
            early_w_clients=(WRITE_CLIENTS.index("fence_store"),), **mem)
        m.submodules.pq = pq = PageRequestQueue(
            ingress_depth=self.ingress_depth, dc_cache_entries=self.dc_cache_entries,
            max_in_flight=self.max_in_flight, **mem)
        m.submodules.fq = fq = FaultQueue(**mem)
        m.submodules.cq = cq = CommandQueue(prefetch_depth=self.prefetch_depth, **mem)
        m.submodules.resp_arb = arb = ResponseArbiter()

        wiring.connect(m, wiring.flipped(self.s_axil), regs.bus)
        wiring.connect(m, wiring.flipped(self.m_axi), axi.axi)
        m.d.comb += [self.irq_cq.eq(regs.irq_cq), self.irq_fq.eq(regs.irq_fq),
                     self.irq_pq.eq(regs.irq_pq)]

        # Page-request path.
        wiring.connect(m, wiring.flipped(self.page_req), pq.page_req)
        wiring.connect(m, pq.regs, regs.pq)
        wiring.connect(m, pq.ddtp, regs.ddtp)
        wiring.connect(m, pq.ctx_mem, axi.read[READ_CLIENTS.index("context")])
        wiring.connect(m, pq.rec_mem, axi.write[WRITE_CLIENTS.index("pq_record")])
        wiring.connect(m, pq.fault, fq.i)
        wiring.connect(m, fq.regs, regs.fq)
        wiring.connect(m, fq.mem, axi.write[WRITE_CLIENTS.index("fq_record")])

        # Command queue: invalidations into the context lookup, IOFENCE.PD counters.
        wiring.connect(m, cq.regs, regs.cq)
        wiring.connect(m, cq.fetch, axi.read[READ_CLIENTS.index("command_fetch")])
        wiring.connect(m, cq.store, axi.write[WRITE_CLIENTS.index("fence_store")])
        wiring.connect(m, cq.inval, pq.inval)
        m.d.comb += [cq.pr_accepted.eq(pq.pr_accepted), cq.pr_retired.eq(pq.pr_retired)]

        # prg_resp: auto-responses and ATS.PRGR responses share it (DESIGN §4).
        wiring.connect(m, pq.resp, arb.auto)
        wiring.connect(m, cq.resp, arb.cmd)
        wiring.connect(m, arb.o, wiring.flipped(self.prg_resp))
        return m


def _flat_members(prefix, signature):
    return {f"{prefix}_{name}": member for name, member in signature.members.items()}


class PrifenceTop(wiring.Component):
    """The Verilog top level ``prifence_top``: :class:`PrifenceCore` with the flat
    port names pinned by DESIGN.md §1 (``s_axil_*``, ``m_axi_*``,
    ``page_req_*``, ``prg_resp_*``, ``irq_*``; ``clk`` and ``rst`` come from the
    ``sync`` domain: ``rst`` is active-high and synchronous).  Parameters as
    :class:`PrifenceCore`."""

    def __init__(self, *, addr_width=56, data_width=64, ingress_depth=16, dc_cache_entries=8,
                 max_in_flight=16, prefetch_depth=None):
        _check_params(addr_width, data_width, ingress_depth, dc_cache_entries)
        self.params = dict(addr_width=addr_width, data_width=data_width,
                           ingress_depth=ingress_depth, dc_cache_entries=dc_cache_entries,
                           max_in_flight=max_in_flight, prefetch_depth=prefetch_depth)
        members = {}
        members.update(_flat_members("s_axil", AxiLiteSignature()))
        members.update(_flat_members("m_axi", AxiSignature(addr_width=addr_width,
                                                           data_width=data_width)))
        members["page_req_valid"] = In(1)
        members["page_req_ready"] = Out(1)
        for name, field in PageRequest.as_shape():
            members[f"page_req_{name}"] = In(field.width)
        members["prg_resp_valid"] = Out(1)
        members["prg_resp_ready"] = In(1)
        for name, field in PrgResponse.as_shape():
            members[f"prg_resp_{name}"] = Out(field.width)
        members.update({"irq_cq": Out(1), "irq_fq": Out(1), "irq_pq": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = PrifenceCore(**self.params)
        for prefix, port in (("s_axil", core.s_axil), ("m_axi", core.m_axi)):
            for name, member in port.signature.members.items():
                inner, outer = getattr(port, name), getattr(self, f"{prefix}_{name}")
                if member.flow == Out:
                    m.d.comb += outer.eq(inner)
                else:
                    m.d.comb += inner.eq(outer)
        m.d.comb += [
            core.page_req.valid.eq(self.page_req_valid),
            self.page_req_ready.eq(core.page_req.ready),
            self.prg_resp_valid.eq(core.prg_resp.valid),
            core.prg_resp.ready.eq(self.prg_resp_ready),
            self.irq_cq.eq(core.irq_cq), self.irq_fq.eq(core.irq_fq), self.irq_pq.eq(core.irq_pq),
        ]
        for name, _ in PageRequest.as_shape():
            m.d.comb += getattr(core.page_req.p, name).eq(getattr(self, f"page_req_{name}"))
        for name, _ in PrgResponse.as_shape():
            m.d.comb += getattr(self, f"prg_resp_{name}").eq(getattr(core.prg_resp.p, name))
        return m


def generate_verilog(*, addr_width=56, data_width=64, ingress_depth=16, dc_cache_entries=8,
                     max_in_flight=16, prefetch_depth=None):
    """The Verilog text of module ``prifence_top`` for these parameters."""
    top = PrifenceTop(addr_width=addr_width, data_width=data_width,
                      ingress_depth=ingress_depth, dc_cache_entries=dc_cache_entries,
                      max_in_flight=max_in_flight, prefetch_depth=prefetch_depth)
    return verilog.convert(top, name=TOP_NAME, emit_src=False)


#: Verilator warning categories that point at real problems; any of them fails
#: the lint.  Other -Wall categories are allowed only when waived in lint.vlt.
REAL_WARNINGS = ("WIDTH", "WIDTHEXPAND", "WIDTHTRUNC", "WIDTHCONCAT", "CASEINCOMPLETE",
                 "CASEOVERLAP", "LATCH", "NOLATCH", "MULTIDRIVEN", "COMBDLY", "BLKSEQ",
                 "UNOPTFLAT", "ALWCOMBORDER", "IMPLICIT", "SELRANGE", "CMPCONST",
                 "UNSIGNED", "BLKANDNBLK", "SYNCASYNCNET", "INITIALDLY", "UNDRIVEN")


@dataclass
class LintReport:
    """Result of :func:`lint_verilog`: every warning line, by category."""
    returncode: int
    warnings: dict        # category -> list of message lines
    output: str

    @property
    def real(self):
        return {k: v for k, v in self.warnings.items() if k in REAL_WARNINGS}

    @property
    def ok(self):
        return self.returncode == 0 and not self.warnings

    def summary(self):
        if self.ok:
            return f"verilator --lint-only -Wall with {LINT_WAIVERS.name}: clean"
        lines = [f"verilator --lint-only -Wall with {LINT_WAIVERS.name}: "
                 f"{sum(map(len, self.warnings.values()))} warning(s)"]
        for category, messages in sorted(self.warnings.items()):
            lines.append(f"  {category}: {len(messages)}  e.g. {messages[0]}")
        if self.returncode and not self.warnings:
            lines.append(self.output.strip())
        return "\n".join(lines)


def lint_verilog(path):
    """Run ``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS` on the
    Verilog file ``path`` (top module ``prifence_top``) and return a
    :class:`LintReport`.  It is ``ok`` only with no warning left."""
    from prifence.toolchain import setup_verilator
    exe = setup_verilator()
    proc = subprocess.run(
        [exe, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", TOP_NAME,
         str(LINT_WAIVERS), str(path)],
        capture_output=True, text=True)
    warnings = {}
    lines = proc.stderr.splitlines()
    for k, line in enumerate(lines):
        match = re.match(r"%Warning-([A-Z0-9_]+):", line)
        if match:
            # Verilator names the instance on a following note line.
            for note in lines[k + 1:k + 3]:
                inst = re.search(r"note: In instance '([^']+)'", note)
                if inst:
                    line = f"{line} [in {inst.group(1)}]"
                    break
            warnings.setdefault(match.group(1), []).append(line)
    return LintReport(proc.returncode, warnings, proc.stderr)

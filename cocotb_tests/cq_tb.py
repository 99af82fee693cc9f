"""Command-queue helpers of the top-level benches (DESIGN.md §2 cqcsr rules, §3 commands).

* Command encoders (:func:`prgr`, :func:`iofence`, :func:`inval_ddt`): every
  bit comes from the :mod:`prifence.formats` codecs.
* :class:`CommandQueueDriver` – the driver side of the ring: the ring lives in
  the bench's AxiRam at ``cqb``; ``await cq.submit(word, ...)`` writes the slots
  and rings the doorbell (cqt); ``await cq.fence(...)`` submits a fence and waits
  until cqh is past it.  Every wait is bounded in clock cycles.
* :class:`PortProbe` – a per-cycle monitor of the top-level ports (and of the
  command queue's cqh register inside ``prifence_top``) that time-stamps the
  events the ordering guarantees talk about: command fetches, AV stores, PQ
  record acknowledgements, page-request and response handshakes, ``irq_cq``.
* :class:`CommandModel` – the reference for the command semantics: the
  transaction-level model of :mod:`sw_model.tlm` fed the same ring, registers and
  fetch faults as the RTL, run until its command queue is idle.

Cycles are those of :func:`cocotb_tests.tb.cycles_now`; every probe samples at
the rising edge, as :class:`~cocotb_tests.tb.ResponseSink` does, so a difference
of two stamps is a number of clock cycles.
"""

import cocotb
from cocotb.triggers import RisingEdge

from prifence.formats import (
    COMMAND_BYTES, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD, FUNC3_PRGR, PAGE_SHIFT, REG,
    InvalDdtCmd, IofenceCmd, Opcode, PrgrCmd, ResponseCode, codec,
)
from rtl.top import READ_CLIENTS, WRITE_CLIENTS
from sw_model.engine import Observer
from sw_model.tlm import TlmEngine, decode_command

from .tb import Layout, WaitTimeout, cycles_now

__all__ = ["prgr", "iofence", "inval_ddt", "prgr_response", "CommandQueueDriver", "PortProbe",
           "CommandModel", "FETCH_ID", "STORE_ID", "PQ_WRITE_ID"]

PRGR = codec(PrgrCmd)
FENCE = codec(IofenceCmd)
INVAL = codec(InvalDdtCmd)

#: AXI IDs of the memory clients the probes tell apart (rtl/top.py).
FETCH_ID = READ_CLIENTS.index("command_fetch")
STORE_ID = WRITE_CLIENTS.index("fence_store")
PQ_WRITE_ID = WRITE_CLIENTS.index("pq_record")

_RID_BITS = PRGR.fields["rid"][1]


# --- command encoders ------------------------------------------------------------------

def prgr(*, did, prgi, code=ResponseCode.SUCCESS, pv=0, pid=0, dsv=None, ignored=0):
    """``ATS.PRGR`` answering device ``did`` (RID, with the segment above it).

    ``dsv`` defaults to 1 exactly when the segment is nonzero; ``ignored`` fills
    the dw1 bits the hardware ignores (DESIGN §3)."""
    rid, dseg = did & ((1 << _RID_BITS) - 1), did >> _RID_BITS
    if dsv is None:
        dsv = int(dseg != 0)
    word = PRGR.pack(opcode=Opcode.ATS, func3=FUNC3_PRGR, pid=pid, pv=pv, dsv=dsv, rid=rid,
                     dseg=dseg, prgi=prgi, code=int(code))
    for name, (off, width) in PRGR.fields.items():
        if name.startswith("_ign"):
            word |= (ignored & ((1 << width) - 1)) << off
    return word


def iofence(*, pd=False, av=0, wsi=0, pr=0, pw=0, data=0, addr=0):
    """``IOFENCE.C`` (``IOFENCE.PD`` with ``pd=True``); with ``av`` it stores the
    4-byte ``data`` at byte address ``addr`` (4-byte aligned)."""
    if addr & 3:
        raise ValueError(f"an IOFENCE store address is 4-byte aligned, not {addr:#x}")
    opcode, func3 = ((Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD) if pd
                     else (Opcode.IOFENCE_C, FUNC3_IOFENCE_C))
    return FENCE.pack(opcode=opcode, func3=func3, av=av, wsi=wsi, pr=pr, pw=pw, data=data,
                      addr=addr >> 2)


def inval_ddt(*, dv, did=0, pid=0):
    """``IODIR.INVAL_DDT`` of one device context (``dv=1``) or of all."""
    return INVAL.pack(opcode=Opcode.IODIR, func3=FUNC3_INVAL_DDT, dv=dv, did=did, pid=pid)


def prgr_response(word):
    """The ``prg_resp`` payload an ``ATS.PRGR`` sends (decoded by the
    transaction-level model's :func:`sw_model.tlm.decode_command`)."""
    kind, f = decode_command(word)
    if kind != "prgr":
        raise ValueError(f"not a legal ATS.PRGR: {kind} {f}")
    did = (f["dseg"] << _RID_BITS | f["rid"]) if f["dsv"] else f["rid"]
    return {"did": did, "pv": f["pv"], "pid": f["pid"] if f["pv"] else 0, "prgi": f["prgi"],
            "code": f["code"]}


# --- the driver side of the ring ------------------------------------------------------------

class CommandQueueDriver:
    """The command ring of one bench, written the way a driver writes it.

    Parameters
    ----------
    tb : cocotb_tests.tb.TB
    log2sz_1 : int
        cqb.LOG2SZ-1: the ring has ``2 ** (log2sz_1 + 1)`` slots.
    ppn : int
        Page number of the ring in the bench's RAM.

    ``tail`` is software's cqt.  :meth:`submit` refuses to overfill the ring
    (``ValueError``) judged by the last cqh it read.
    """

    def __init__(self, tb, *, log2sz_1=4, ppn=Layout.CQ_PPN):
        if not isinstance(log2sz_1, int) or not 0 <= log2sz_1 <= 15:
            raise TypeError(f"log2sz_1 must be an integer in 0..15, not {log2sz_1!r}")
        self.tb = tb
        self.log2sz_1 = log2sz_1
        self.size = 1 << (log2sz_1 + 1)
        self.ppn = ppn
        self.tail = 0
        self.known_head = 0
        self.cie = 1
        self.ring_bytes = self.size * COMMAND_BYTES

    # registers
    async def configure(self):
        """Write cqb (the queue must be off) and zero software's tail."""
        await self.tb.write_reg("cqb", log2sz_1=self.log2sz_1, ppn=self.ppn)
        self.tail = self.known_head = 0

    async def enable(self, *, cie=1, wait=True, configure=True):
        """(Configure and) enable: cqh reads 0, error bits are clear, cqon rises."""
        self.cie = cie
        if configure:
            await self.configure()
        await self.tb.write_reg("cqcsr", cqen=1, cie=cie)
        self.known_head = 0
        self.tail = await self.tb.read_reg("cqt")
        if wait:
            await self.tb.wait_field("cqcsr", "cqon", 1)

    async def disable(self, *, wait=True, timeout=2000):
        await self.tb.write_reg("cqcsr", cqen=0, cie=self.cie)
        if wait:
            await self.tb.wait_field("cqcsr", "cqon", 0, timeout=timeout)

    async def csr(self):
        return REG["cqcsr"].decode(await self.tb.read_reg("cqcsr"))

    async def head(self):
        self.known_head = await self.tb.read_reg("cqh")
        return self.known_head

    async def clear(self, *names):
        """Clear W1C status bits (queue left enabled, ``cie`` as enabled)."""
        await self.tb.write_reg("cqcsr", cqen=1, cie=self.cie, **{n: 1 for n in names})

    async def wait_status(self, name, value=1, *, timeout=2000):
        await self.tb.wait_field("cqcsr", name, value, timeout=timeout)

    async def wait_head(self, index, *, timeout=4000):
        start = cycles_now()
        while cycles_now() - start < timeout:
            if await self.head() == index:
                return
        raise WaitTimeout(f"cqh did not reach {index} within {timeout} cycles (reads "
                          f"{self.known_head}, cycle {cycles_now()})")

    # ring
    def slot_addr(self, index):
        return (self.ppn << PAGE_SHIFT) + (index % self.size) * COMMAND_BYTES

    def write_slot(self, index, word):
        self.tb.ram.write(self.slot_addr(index), word.to_bytes(COMMAND_BYTES, "little"))

    def place(self, *words):
        """Write ``words`` at the tail without ringing the doorbell; returns
        their slot indices."""
        used = (self.tail - self.known_head) % self.size
        if used + len(words) > self.size - 1:
            raise ValueError(f"{len(words)} command(s) do not fit: {used} of {self.size - 1} "
                             f"slots in use (cqh {self.known_head}, cqt {self.tail})")
        indices = []
        for word in words:
            self.write_slot(self.tail, word)
            indices.append(self.tail)
            self.tail = (self.tail + 1) % self.size
        return indices

    async def doorbell(self):
        await self.tb.write_reg("cqt", index=self.tail)

    async def submit(self, *words):
        """Write the commands at the tail and move cqt past them; returns their
        slot indices."""
        indices = self.place(*words)
        await self.doorbell()
        return indices

    async def submit_all(self, words, *, timeout=20000):
        """Submit any number of commands, waiting for room as a driver would."""
        start = cycles_now()
        words = list(words)
        while words:
            room = self.size - 1 - (self.tail - self.known_head) % self.size
            if room:
                await self.submit(*words[:room])
                words = words[room:]
            else:
                await self.head()
            if cycles_now() - start > timeout:
                raise WaitTimeout(f"the ring stayed full for {timeout} cycles")

    async def fence(self, *, pd=False, av=0, wsi=0, data=0, addr=0, timeout=4000):
        """Submit an IOFENCE.C (or .PD) and wait until cqh is past it; returns
        its slot index."""
        (index,) = await self.submit(iofence(pd=pd, av=av, wsi=wsi, data=data, addr=addr))
        await self.wait_head(self.tail, timeout=timeout)
        return index

    def read_u32(self, addr):
        return int.from_bytes(self.tb.ram.read(addr, 4), "little")


# --- per-cycle port probe ---------------------------------------------------------------

class PortProbe:
    """Time-stamps, at each rising edge, the handshakes the benches reason about.

    Lists of ``(cycle, value)``: ``fetch_ar`` (command fetch AR: address),
    ``fetch_last`` (last R beat of a command fetch: resp), ``stores`` (AV store
    AW: address), ``store_b`` (AV store B: resp), ``pq_b`` (PQ record write B:
    resp), ``heads`` (cqh, on every change, first value included), ``irq`` (irq_cq
    on every change).  ``cqh`` is read inside ``prifence_top``
    (``core.cq.head``), so its stamp is the first cycle the register holds the
    new value, as software would read it."""

    def __init__(self, tb):
        self.tb = tb
        self.dut = tb.dut
        self.fetch_ar, self.fetch_last, self.stores, self.store_b, self.pq_b = [], [], [], [], []
        self.heads, self.irq = [], []
        try:
            self._head = self.dut.core.cq.head
        except AttributeError as exc:
            raise AttributeError("PortProbe needs the command queue's cqh register "
                                 "(prifence_top.core.cq.head) to be visible") from exc
        self._task = cocotb.start_soon(self._run())

    def head_cycle(self, value, after=0):
        """First cycle (at or after ``after``) at which cqh became ``value``."""
        for cycle, head in self.heads:
            if cycle >= after and head == value:
                return cycle
        return None

    async def _run(self):
        d = self.dut
        last_head = last_irq = None
        while True:
            await RisingEdge(self.tb.clock)
            now = cycles_now()
            if int(d.m_axi_arvalid.value) and int(d.m_axi_arready.value) \
                    and int(d.m_axi_arid.value) == FETCH_ID:
                self.fetch_ar.append((now, int(d.m_axi_araddr.value)))
            if int(d.m_axi_rvalid.value) and int(d.m_axi_rready.value) \
                    and int(d.m_axi_rlast.value) and int(d.m_axi_rid.value) == FETCH_ID:
                self.fetch_last.append((now, int(d.m_axi_rresp.value)))
            if int(d.m_axi_awvalid.value) and int(d.m_axi_awready.value) \
                    and int(d.m_axi_awid.value) == STORE_ID:
                self.stores.append((now, int(d.m_axi_awaddr.value)))
            if int(d.m_axi_bvalid.value) and int(d.m_axi_bready.value):
                bid = int(d.m_axi_bid.value)
                if bid == STORE_ID:
                    self.store_b.append((now, int(d.m_axi_bresp.value)))
                elif bid == PQ_WRITE_ID:
                    self.pq_b.append((now, int(d.m_axi_bresp.value)))
            head = int(self._head.value)
            if head != last_head:
                self.heads.append((now, head))
                last_head = head
            irq = int(d.irq_cq.value)
            if irq != last_irq:
                self.irq.append((now, irq))
                last_irq = irq


# --- reference: the transaction-level model's command queue ----------------------------------

class _CommandLog(Observer):
    def __init__(self):
        self.responses, self.fences, self.errors = [], [], []

    def prg_response(self, resp, source):
        if source[0] == "prgr":
            self.responses.append(dict(resp))

    def fence_completed(self, index, kind, fields):
        # Every earlier ATS.PRGR response has been sent, no later one yet.
        self.fences.append({"index": index, "kind": kind, "av": fields["av"],
                            "addr": fields["addr"] << 2, "earlier_responses": len(self.responses)})

    def cq_error(self, kind, index, cqh):
        self.errors.append((kind, index))


class CommandModel:
    """:mod:`sw_model.tlm`'s hardware model as the reference of the command
    queue: it gets the same ring contents, register writes and fetch faults as
    the RTL, and :meth:`settle` runs it until its command queue is idle (cqh at
    cqt, or stopped on an error).

    Only the command side is modelled here; the benches check page requests
    against :mod:`sw_model.disposition` themselves."""

    def __init__(self, *, seed):
        self.log = _CommandLog()
        self.engine = TlmEngine(seed=seed, observer=self.log, mem_latency=(1, 1))
        self.hw = self.engine.hw

    def write_memory(self, addr, data):
        self.hw.mem.write(addr, data)

    def read_memory(self, addr, n):
        return self.hw.mem.read(addr, n)

    def inject_fetch_fault(self, lo, hi):
        self.hw.mem.inject_fault(lo, hi, kind="r")

    def inject_store_fault(self, lo, hi):
        self.hw.mem.inject_fault(lo, hi, kind="w")

    def clear_faults(self):
        self.hw.mem.faults.clear()

    def write_reg(self, name, value=None, **fields):
        reg = REG[name]
        value = reg.encode(**fields) if value is None else value
        if reg.size == 8:
            self.hw.reg_write(reg.offset + 4, value >> 32)
        self.hw.reg_write(reg.offset, value & 0xFFFF_FFFF)

    def read_reg(self, name):
        reg = REG[name]
        value = self.hw.reg_read(reg.offset)
        if reg.size == 8:
            value |= self.hw.reg_read(reg.offset + 4) << 32
        return value

    def settle(self, *, bound=100_000):
        """Run the model until its command queue is idle; returns the cycles it took."""
        cq, engine = self.hw.cq, self.engine
        start = engine.now()

        async def idle():
            while True:
                stopped = cq.cmd_ill or cq.mf or not cq.en
                if (cq.h == cq.t or stopped) and not self.hw.ats_q:
                    return engine.now() - start
                if engine.now() - start > bound:
                    raise WaitTimeout(f"the command model did not settle in {bound} cycles")
                await engine.delay(1)

        return engine.run(idle(), name="settle")

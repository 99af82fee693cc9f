"""The cocotb testbench of ``prifence_top``: clock, reset, bus models and the
protocol-level helpers the benches are written with.

:class:`TB` owns

* ``tb.axil`` – cocotbext-axi's AXI4-Lite master on ``s_axil_*``; registers are
  accessed by name from :data:`prifence.formats.REG` (:meth:`TB.write_reg`,
  :meth:`TB.read_reg`, :meth:`TB.read_field`);
* ``tb.ram`` – cocotbext-axi's AXI RAM on ``m_axi_*``, with
  :meth:`TB.inject_errors` (chosen addresses answer SLVERR) and
  :meth:`TB.memory_backpressure`;
* ``tb.device`` – :class:`PageRequestSource`, a thin driver of ``page_req``
  (``await tb.device.page_request(did=..., ...)``);
* ``tb.prg`` – :class:`ResponseSink`, the ``prg_resp`` monitor with a ready
  back-pressure generator.

Every wait is bounded in clock cycles and fails loudly (:class:`WaitTimeout`).
"""

import json
import logging
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from prifence.formats import (
    DC_BYTES, FQ_RECORD_BYTES, PAGE_SHIFT, PQ_RECORD_BYTES, REG, DdtpMode, DeviceContextTc,
    PageRequest, PrgResponse, codec,
)

__all__ = ["TB", "WaitTimeout", "PageRequestSource", "ResponseSink", "Layout", "bench_seed",
           "bench_params", "CLOCK_NS"]

CLOCK_NS = 10
_REQ = codec(PageRequest)
_RESP = codec(PrgResponse)
_TC = codec(DeviceContextTc)


class WaitTimeout(AssertionError):
    """A bounded wait ran out of cycles."""


def bench_seed():
    """The seed of this run (from pytest's ``--seed`` through the runner)."""
    return int(os.environ.get("PRIFENCE_SEED", "0"))


def bench_params():
    """The RTL parameters of the build under test."""
    return json.loads(os.environ.get("PRIFENCE_PARAMS", "{}"))


class Layout:
    """Where the benches put the in-memory structures (page numbers)."""
    DDT_PPN = 0x10          # device directory: 128 contexts × 32 B = 4 KiB
    PQ_PPN = 0x100          # page-request queue: up to 64 Ki × 16 B = 1 MiB
    FQ_PPN = 0x200          # fault queue: up to 64 Ki × 32 B = 2 MiB
    CQ_PPN = 0x400
    SCRATCH = 0x500 << PAGE_SHIFT
    RAM_SIZE = 0x600 << PAGE_SHIFT


def cycles_now():
    return int(get_sim_time("ns")) // CLOCK_NS


def request(**fields):
    """A full PageRequest dict: defaults for missing fields (a plain read of
    page 0 with L=1), each value checked against its width."""
    req = {"did": 0, "pv": 0, "pid": 0, "priv": 0, "exec": 0, "r": 1, "w": 0, "l": 1,
           "prgi": 0, "addr": 0}
    unknown = set(fields) - set(req)
    if unknown:
        raise KeyError(f"not PageRequest fields: {sorted(unknown)}")
    req.update(fields)
    _REQ.pack(**req)        # range check
    return req


class PageRequestSource:
    """Drives ``page_req``: one request per clock while the FIFO has room.

    ``accepted`` lists ``(cycle, request)`` in acceptance order."""

    def __init__(self, dut, clock):
        self.dut, self.clock = dut, clock
        self.queue = deque()
        self.accepted = []
        self.dut.page_req_valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send_nowait(self, **fields):
        """Queue a request (defaults per :func:`request`); returns its dict."""
        req = request(**fields)
        self.queue.append(req)
        return req

    async def page_request(self, *, timeout=2000, **fields):
        """Send one request and return once ``page_req`` accepted it."""
        req = self.send_nowait(**fields)
        await self.wait_idle(timeout=timeout)
        return req

    async def wait_idle(self, *, timeout=10000):
        """Wait until every queued request has been accepted."""
        for _ in range(timeout):
            if not self.queue:
                return
            await RisingEdge(self.clock)
        raise WaitTimeout(f"page_req: {len(self.queue)} request(s) not accepted within "
                          f"{timeout} cycles (cycle {cycles_now()})")

    def _drive(self, req):
        for name in _REQ.public:
            getattr(self.dut, f"page_req_{name}").value = req[name]

    async def _run(self):
        valid = False
        while True:
            await RisingEdge(self.clock)
            if valid and int(self.dut.page_req_ready.value):
                self.accepted.append((cycles_now(), self.queue.popleft()))
            if self.queue:
                self._drive(self.queue[0])
                self.dut.page_req_valid.value = 1
                valid = True
            else:
                self.dut.page_req_valid.value = 0
                valid = False


class ResponseSink:
    """Takes ``prg_resp``; ``ready`` follows :meth:`set_backpressure`.

    ``received`` lists ``(cycle, response dict)`` in arrival order."""

    def __init__(self, dut, clock):
        self.dut, self.clock = dut, clock
        self.received = []
        self._pause = None
        self.dut.prg_resp_ready.value = 1
        self._task = cocotb.start_soon(self._run())

    def set_backpressure(self, pause=None):
        """``pause``: None (always ready), a probability of holding ready low
        in a cycle (with a ``random.Random``: ``(rng, p)``), or an iterator of
        booleans (True = not ready)."""
        if isinstance(pause, tuple):
            rng, p = pause
            local = random.Random(rng.random())
            self._pause = iter(lambda: local.random() < p, None)
        else:
            self._pause = None if pause is None else iter(pause)

    def hold(self):
        """Keep ready low until :meth:`release`."""
        self._pause = iter(lambda: True, None)

    def release(self):
        self._pause = None

    def responses(self):
        return [r for _, r in self.received]

    async def wait_count(self, count, *, timeout=5000):
        for _ in range(timeout):
            if len(self.received) >= count:
                return self.responses()
            await RisingEdge(self.clock)
        raise WaitTimeout(f"prg_resp: {len(self.received)} response(s) after {timeout} cycles, "
                          f"expected {count} (cycle {cycles_now()})")

    async def _run(self):
        ready = True
        while True:
            await RisingEdge(self.clock)
            if ready and int(self.dut.prg_resp_valid.value):
                self.received.append((cycles_now(), {
                    name: int(getattr(self.dut, f"prg_resp_{name}").value)
                    for name in _RESP.public}))
            ready = not (self._pause is not None and next(self._pause, False))
            self.dut.prg_resp_ready.value = int(ready)


class TB:
    """One bench: instantiate in a cocotb test, then ``await tb.reset()``."""

    def __init__(self, dut, *, ram_size=Layout.RAM_SIZE):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        self.params = bench_params()
        self.data_width = self.params.get("data_width", 64)
        self.clock = dut.clk
        self._clock_task = cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        dut.rst.value = 1
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=ram_size)
        for name in ("cocotb.prifence_top.s_axil", "cocotb.prifence_top.m_axi"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.device = PageRequestSource(dut, dut.clk)
        self.prg = ResponseSink(dut, dut.clk)
        self._error_ranges = {"read": [], "write": []}
        self.read_log = []          # addresses of every memory read, in order
        self.write_log = []         # (cycle, address, failed) of every memory write beat
        self._install_error_hooks()

    # --- clock and reset ---------------------------------------------------------

    async def reset(self, cycles=4):
        self.dut.rst.value = 1
        await ClockCycles(self.clock, cycles)
        self.dut.rst.value = 0
        await ClockCycles(self.clock, 2)

    async def cycles(self, n):
        await ClockCycles(self.clock, n)

    async def wait_until(self, predicate, *, timeout=5000, what="condition"):
        """Wait (checking once per clock) until ``predicate()`` is true."""
        for _ in range(timeout):
            if predicate():
                return
            await RisingEdge(self.clock)
        raise WaitTimeout(f"{what} not reached within {timeout} cycles (cycle {cycles_now()})")

    # --- registers by name -----------------------------------------------------------

    async def write_word(self, offset, value, strb=None):
        await self.axil.write(offset, int(value & 0xFFFF_FFFF).to_bytes(4, "little"))

    async def read_word(self, offset):
        return int.from_bytes((await self.axil.read(offset, 4)).data, "little")

    async def write_reg(self, name, value=None, **fields):
        """Write register ``name``: a raw ``value`` or named fields (others 0).
        A 64-bit register is written high word first (DESIGN §2)."""
        reg = REG[name]
        if value is None:
            value = reg.encode(**fields)
        elif fields:
            raise TypeError("give either a raw value or fields, not both")
        if reg.size == 8:
            await self.write_word(reg.offset + 4, value >> 32)
        await self.write_word(reg.offset, value)

    async def read_reg(self, name):
        reg = REG[name]
        value = await self.read_word(reg.offset)
        if reg.size == 8:
            value |= await self.read_word(reg.offset + 4) << 32
        return value

    async def read_field(self, name, field):
        return REG[name].get(await self.read_reg(name), field)

    async def wait_field(self, name, field, value, *, timeout=2000):
        """Poll ``name.field`` until it reads ``value`` (bounded in cycles)."""
        start = cycles_now()
        while cycles_now() - start < timeout:
            if await self.read_field(name, field) == value:
                return
        raise WaitTimeout(f"{name}.{field} did not read {value} within {timeout} cycles "
                          f"(cycle {cycles_now()})")

    # --- structures in memory ------------------------------------------------------------

    async def set_ddtp(self, mode, ppn=Layout.DDT_PPN):
        await self.write_reg("ddtp", iommu_mode=int(mode), ppn=ppn)

    def write_dc(self, did, tc=None, **fields):
        """Write device context ``did`` (dw0 from ``tc`` or named tc fields)."""
        if tc is None:
            tc = _TC.pack(**fields)
        addr = (Layout.DDT_PPN << PAGE_SHIFT) + (did & 0x7F) * DC_BYTES
        self.ram.write(addr, tc.to_bytes(8, "little") + bytes(DC_BYTES - 8))
        return tc

    @staticmethod
    def good_tc(*, prpr=0, dtf=0):
        return _TC.pack(v=1, en_ats=1, en_pri=1, prpr=prpr, dtf=dtf)

    async def enable_pq(self, *, log2sz_1=3, ppn=Layout.PQ_PPN, pie=1, wait=True):
        await self.write_reg("pqb", log2sz_1=log2sz_1, ppn=ppn)
        await self.write_reg("pqcsr", pqen=1, pie=pie)
        if wait:
            await self.wait_field("pqcsr", "pqon", 1)

    async def enable_fq(self, *, log2sz_1=7, ppn=Layout.FQ_PPN, fie=1, wait=True):
        await self.write_reg("fqb", log2sz_1=log2sz_1, ppn=ppn)
        await self.write_reg("fqcsr", fqen=1, fie=fie)
        if wait:
            await self.wait_field("fqcsr", "fqon", 1)

    async def setup(self, *, dids=(1,), tc=None, pq_log2sz_1=3, fq_log2sz_1=7):
        """Reset, a 1LVL directory with good contexts for ``dids``, PQ and FQ on."""
        await self.reset()
        for did in dids:
            self.write_dc(did, self.good_tc() if tc is None else tc)
        await self.set_ddtp(DdtpMode.LVL1)
        await self.enable_pq(log2sz_1=pq_log2sz_1)
        await self.enable_fq(log2sz_1=fq_log2sz_1)

    def pq_record(self, index, ppn=Layout.PQ_PPN):
        raw = self.ram.read((ppn << PAGE_SHIFT) + index * PQ_RECORD_BYTES, PQ_RECORD_BYTES)
        return int.from_bytes(raw, "little")

    def fq_record(self, index, ppn=Layout.FQ_PPN):
        raw = self.ram.read((ppn << PAGE_SHIFT) + index * FQ_RECORD_BYTES, FQ_RECORD_BYTES)
        return int.from_bytes(raw, "little")

    def clear_queue_memory(self, ppn, nbytes):
        self.ram.write(ppn << PAGE_SHIFT, bytes(nbytes))

    async def consume_pq(self, upto=None):
        """Advance pqh to pqt (or ``upto``), returning the records in between."""
        size = 1 << (await self.read_field("pqb", "log2sz_1") + 1)
        head = await self.read_reg("pqh")
        tail = await self.read_reg("pqt") if upto is None else upto
        records = []
        while head != tail:
            records.append(self.pq_record(head))
            head = (head + 1) % size
        await self.write_reg("pqh", index=head)
        return records

    # --- memory: error injection and back-pressure -----------------------------------

    def _install_error_hooks(self):
        write_if, read_if = self.ram.write_if, self.ram.read_if
        original_write, original_read = write_if._write, read_if._read

        def hit(kind, address, length):
            return any(lo < address + length and address < hi for lo, hi in self._error_ranges[kind])

        async def write(address, data):
            self.write_log.append((cycles_now(), address, hit("write", address, len(data))))
            if hit("write", address, len(data)):
                raise IOError(f"injected write error at {address:#x}")
            await original_write(address, data)

        async def read(address, length):
            self.read_log.append(address)
            if hit("read", address, length):
                raise IOError(f"injected read error at {address:#x}")
            return await original_read(address, length)

        write_if._write, read_if._read = write, read

    def inject_errors(self, lo, hi, *, reads=True, writes=True):
        """Make every burst touching bytes [lo, hi) answer SLVERR."""
        if reads:
            self._error_ranges["read"].append((lo, hi))
        if writes:
            self._error_ranges["write"].append((lo, hi))

    def clear_errors(self):
        self._error_ranges = {"read": [], "write": []}

    def memory_backpressure(self, rng=None, p=0.0):
        """Pause every AXI channel of the RAM in a cycle with probability ``p``."""
        channels = (self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                    self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                    self.ram.read_if.r_channel)
        for ch in channels:
            if not p:
                ch.clear_pause_generator()
                ch.pause = False            # clearing the generator leaves the last value
            else:
                local = random.Random(rng.random())
                ch.set_pause_generator(iter(lambda local=local: local.random() < p, None))

    def hold_write_responses(self, hold=True):
        """Stall (``hold=True``) or release the RAM's B channel: writes then stay
        in flight."""
        self.ram.write_if.b_channel.clear_pause_generator()
        self.ram.write_if.b_channel.pause = hold

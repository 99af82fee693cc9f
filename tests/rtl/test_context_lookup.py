"""The device-context lookup (rtl/context_lookup.py) on Amaranth's simulator,
with a small memory model answering its dw0 reads."""

import gc
import random
import warnings

import pytest
from amaranth.sim import Simulator

from prifence.formats import (
    DC_BYTES, PAGE_SHIFT, DdtpMode, DeviceContextTc, codec, dc_misconfigured,
)
from rtl.context_lookup import ContextLookup, ContextStatus, tc_misconfigured

_TC = codec(DeviceContextTc)
DDT_PPN = 0x40
GOOD = _TC.pack(v=1, en_ats=1, en_pri=1, prpr=1)


class Harness:
    def __init__(self, ctx, dut, memory, *, latency=3):
        self.ctx, self.dut, self.memory, self.latency = ctx, dut, memory, latency
        self.reads = []
        self.faults = set()

    async def lookup(self, did, *, inval=None, timeout=50):
        """One request; returns (status, flags dict, cycles from accept to result).
        ``inval``: (cycle offset, all, did) to pulse an invalidation meanwhile."""
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.p.did, did)
        ctx.set(dut.o.ready, 1)
        accepted = None
        pending_read = None
        for cycle in range(timeout):
            if inval and cycle == inval[0]:
                ctx.set(dut.inval.valid, 1)
                ctx.set(dut.inval.all, inval[1])
                ctx.set(dut.inval.did, inval[2])
            elif inval:
                ctx.set(dut.inval.valid, 0)
            # Memory: take AR, answer after `latency` cycles.
            ctx.set(dut.mem.ar.ready, 1)
            ctx.set(dut.mem.r.valid, 0)
            if pending_read and pending_read[0] == 0:
                addr = pending_read[1]
                ctx.set(dut.mem.r.valid, 1)
                ctx.set(dut.mem.r.p.data, self.memory.get(addr, 0))
                ctx.set(dut.mem.r.p.resp, 2 if addr in self.faults else 0)
                ctx.set(dut.mem.r.p.last, 1)
            got_ar = ctx.get(dut.mem.ar.valid)
            ar_addr = ctx.get(dut.mem.ar.p.addr)
            i_fire = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            o_fire = ctx.get(dut.o.valid)
            result = (ctx.get(dut.o.p.status), {k: ctx.get(getattr(dut.o.p.dc, k))
                                                for k in ("en_ats", "en_pri", "dtf", "prpr")})
            await ctx.tick()
            if got_ar:
                self.reads.append(ar_addr)
                pending_read = [self.latency, ar_addr]
            elif pending_read:
                pending_read[0] -= 1
                if pending_read[0] < 0:
                    pending_read = None
            if i_fire:
                accepted = cycle
                ctx.set(dut.i.valid, 0)
            if o_fire:
                ctx.set(dut.inval.valid, 0)
                return ContextStatus(result[0]), result[1], cycle - accepted
        raise AssertionError(f"no lookup result for did {did:#x} in {timeout} cycles")


def _run(bench, *, mode=DdtpMode.LVL1, memory=None, entries=2):
    dut = ContextLookup(cache_entries=entries)
    memory = {} if memory is None else memory

    async def tb(ctx):
        ctx.set(dut.ddtp.mode, mode)
        ctx.set(dut.ddtp.ppn, DDT_PPN)
        await bench(ctx, dut, Harness(ctx, dut, memory))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def _dc(did):
    return (DDT_PPN << PAGE_SHIFT) + did * DC_BYTES


def test_modes_without_memory():
    for mode, want in ((DdtpMode.OFF, ContextStatus.OFF), (DdtpMode.BARE, ContextStatus.BARE), (3, ContextStatus.OFF)):
        async def bench(ctx, dut, h, want=want):
            status, _, latency = await h.lookup(5)
            assert status == want and latency == ContextLookup.HIT_LATENCY and h.reads == []
        _run(bench, mode=mode)

    async def bench(ctx, dut, h):
        assert (await h.lookup(0x80))[0] == ContextStatus.TOO_WIDE
        assert (await h.lookup(0x10001))[0] == ContextStatus.TOO_WIDE
        assert h.reads == []
    _run(bench)


def test_miss_then_hit_and_replacement():
    memory = {_dc(d): GOOD for d in range(4)}

    async def bench(ctx, dut, h):
        status, flags, latency = await h.lookup(1)
        assert status == ContextStatus.OK and flags == {"en_ats": 1, "en_pri": 1, "dtf": 0, "prpr": 1}
        assert h.reads == [_dc(1)] and latency > 2
        status, _, latency = await h.lookup(1)
        assert status == ContextStatus.OK and latency == ContextLookup.HIT_LATENCY and len(h.reads) == 1
        await h.lookup(2)
        await h.lookup(3)                      # two entries: evicts 1 (round-robin)
        await h.lookup(1)
        assert h.reads == [_dc(1), _dc(2), _dc(3), _dc(1)]
    _run(bench, memory=memory)


def test_bad_contexts_are_not_cached():
    memory = {_dc(1): _TC.pack(v=0), _dc(2): _TC.pack(v=1, en_ats=1, en_pri=1, sxl=1), _dc(3): GOOD}

    async def bench(ctx, dut, h):
        h.faults.add(_dc(3))
        for _ in range(2):
            assert (await h.lookup(1))[0] == ContextStatus.INVALID
            assert (await h.lookup(2))[0] == ContextStatus.MISCONFIGURED
            assert (await h.lookup(3))[0] == ContextStatus.LOAD_FAULT
        assert len(h.reads) == 6
    _run(bench, memory=memory)


def test_invalidation_during_read_prevents_fill():
    memory = {_dc(1): GOOD, _dc(2): GOOD}

    async def bench(ctx, dut, h):
        # DV=1 for this device while its read is in flight: no fill.
        assert (await h.lookup(1, inval=(2, 0, 1)))[0] == ContextStatus.OK
        await h.lookup(1)
        assert h.reads == [_dc(1), _dc(1)]
        # Another device's invalidation does not stop the fill.
        await h.lookup(2, inval=(2, 0, 1))
        await h.lookup(2)
        assert h.reads.count(_dc(2)) == 1
        # DV=0 empties the cache (a lookup in the same cycle still saw the old entry).
        ctx.set(dut.inval.valid, 1)
        ctx.set(dut.inval.all, 1)
        await ctx.tick()
        ctx.set(dut.inval.valid, 0)
        await h.lookup(2)
        assert h.reads.count(_dc(2)) == 2
        assert ctx.get(dut.inval.ready)
    _run(bench, memory=memory)


def test_ddtp_write_empties_cache():
    memory = {_dc(1): GOOD}

    async def bench(ctx, dut, h):
        await h.lookup(1)
        ctx.set(dut.ddtp.written, 1)
        await ctx.tick()
        ctx.set(dut.ddtp.written, 0)
        await h.lookup(1)
        assert h.reads == [_dc(1), _dc(1)]
    _run(bench, memory=memory)


def test_misconfigured_mirrors_formats():
    """The hardware check equals formats.dc_misconfigured on random contexts."""
    from amaranth.hdl import Signal, Module
    rng = random.Random(7)
    words = [0, GOOD, (1 << 64) - 1] + [rng.getrandbits(12) | (rng.getrandbits(1) << rng.randrange(64))
                                        for _ in range(300)]
    tc = Signal(DeviceContextTc)
    out = Signal()
    m = Module()
    m.d.comb += out.eq(tc_misconfigured(tc))

    async def bench(ctx):
        for word in words:
            ctx.set(tc.as_value(), word)
            await ctx.delay(1e-9)
            assert ctx.get(out) == dc_misconfigured(word), hex(word)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the half-built component is never elaborated
        with pytest.raises(TypeError, match="cache_entries"):
            ContextLookup(cache_entries=0)
        gc.collect()

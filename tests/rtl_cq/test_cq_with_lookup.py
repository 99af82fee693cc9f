"""IODIR.INVAL_DDT end to end: the command queue against the device-context lookup.

A changed device context must take effect only after the invalidation (DESIGN §3):
before it, the lookup may answer from its cache (the old context); after the
INVAL_DDT and a fence have completed, a request is looked up from memory as it is
then.  A context read in flight when the invalidation executes must not fill the
cache.
"""

from collections import deque

from amaranth.hdl import Signal, Value
from amaranth.lib import wiring

from cq_harness import CqSystem, iofence, inval_ddt, run
from prifence.formats import DC_BYTES, PAGE_SHIFT, DeviceContextTc, DdtpMode, PageRequest, codec
from rtl.context_lookup import ContextLookup, ContextStatus

TC = codec(DeviceContextTc)
REQ = codec(PageRequest)
DDT_PPN = 0x300


class CqWithLookup(CqSystem):
    """The command queue's ``inval`` wired to a ContextLookup in 1LVL mode."""

    inval_answered = True

    def __init__(self):
        super().__init__()
        self.lookup = ContextLookup()
        self.ddtp_mode = Signal(4, init=DdtpMode.LVL1)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.submodules.lookup = lookup = self.lookup
        wiring.connect(m, self.cq.inval, lookup.inval)
        m.d.comb += [lookup.ddtp.mode.eq(self.ddtp_mode), lookup.ddtp.ppn.eq(DDT_PPN),
                     lookup.ddtp.written.eq(0)]
        return m


class LookupSide:
    """Page requests into the lookup, its results out, its context reads answered
    from the environment's memory after ``latency`` cycles."""

    def __init__(self, lookup, *, latency=2):
        self.lookup, self.latency = lookup, latency
        self.requests = deque()
        self.results = []            # (cycle, did, status, en_pri)
        self.reads = []              # (cycle, did index) of context reads accepted

    async def process(self, ctx, env):
        lk = self.lookup
        answers = deque()            # (due cycle, data)
        offer = None
        r_offered = None
        ctx.set(lk.mem.ar.ready, 1)
        ctx.set(lk.o.ready, 1)
        async for _, _, ar_v, ar_addr, i_v, i_r, o_v, o_p in ctx.tick().sample(
                lk.mem.ar.valid, lk.mem.ar.payload.addr, lk.i.valid, lk.i.ready,
                lk.o.valid, lk.o.payload):
            now = env.cycle
            if ar_v:
                self.reads.append((now, (ar_addr - (DDT_PPN << PAGE_SHIFT)) // DC_BYTES))
                answers.append((now + self.latency, env.read(ar_addr, 8)))
            if r_offered is not None:
                answers.popleft()
            if i_v and i_r:
                self.requests.popleft()
                offer = None
            if o_v:
                res = o_p
                self.results.append((now, res.req.did, ContextStatus(res.status), res.dc.en_pri))
            r_offered = answers[0] if answers and answers[0][0] <= now else None
            ctx.set(lk.mem.r.valid, r_offered is not None)
            if r_offered is not None:
                ctx.set(lk.mem.r.payload.data, r_offered[1])
                ctx.set(lk.mem.r.payload.resp, 0)
                ctx.set(lk.mem.r.payload.last, 1)
            if offer is None and self.requests:
                offer = self.requests[0]
            ctx.set(lk.i.valid, offer is not None)
            if offer is not None:
                ctx.set(Value.cast(lk.i.payload), offer)


def write_context(env, did, **flags):
    env.write((DDT_PPN << PAGE_SHIFT) + did * DC_BYTES, TC.pack(v=1, **flags), 8)


def request(did):
    return REQ.pack(did=did, pv=0, r=1, l=1, prgi=1, addr=0x1000)


def simulate(bench, *, latency=2):
    system = CqWithLookup()
    side = LookupSide(system.lookup, latency=latency)

    async def wrapped(sw, env):
        await bench(sw, env, side)

    run(wrapped, system=system, processes=[side.process])
    return side


async def look_up(sw, env, side, did, *, bound=200):
    """Send one request; return its result's EN_PRI."""
    n = len(side.results)
    side.requests.append(request(did))
    await sw.wait(lambda: len(side.results) > n, bound=bound, what=f"lookup of device {did}")
    _, got_did, status, en_pri = side.results[n]
    assert got_did == did and status == ContextStatus.OK, side.results[n]
    return en_pri


async def invalidate_and_fence(sw, word):
    sw.post(word, iofence())
    await sw.wait_idle()


def test_changed_context_takes_effect_only_after_invalidation():
    async def bench(sw, env, side):
        await sw.enable()
        write_context(env, 5, en_ats=1, en_pri=1)
        write_context(env, 6, en_ats=1, en_pri=1)
        assert await look_up(sw, env, side, 5) == 1
        assert await look_up(sw, env, side, 6) == 1
        reads = len(side.reads)
        write_context(env, 5, en_ats=0, en_pri=0)      # software changes the context
        write_context(env, 6, en_ats=0, en_pri=0)
        assert await look_up(sw, env, side, 5) == 1, "no invalidation yet: the cache answers"
        assert len(side.reads) == reads
        await invalidate_and_fence(sw, inval_ddt(dv=1, did=5))
        assert await look_up(sw, env, side, 5) == 0, "after INVAL_DDT the new context is used"
        assert await look_up(sw, env, side, 6) == 1, "device 6 was not covered"
        await invalidate_and_fence(sw, inval_ddt(dv=0, did=5))
        assert await look_up(sw, env, side, 6) == 0, "DV=0 covers every device"
    side = simulate(bench)
    assert [d for _, d in side.reads] == [5, 6, 5, 6]


def test_context_read_in_flight_does_not_fill_after_invalidation():
    """The lookup of device 7 reads its context slowly; INVAL_DDT (all) executes
    while the read is in flight; the result of that read may be used for that
    request, but a later request must read memory again."""
    async def bench(sw, env, side):
        await sw.enable()
        write_context(env, 7, en_ats=1, en_pri=1)
        side.requests.append(request(7))
        await sw.wait(lambda: side.reads, bound=50, what="the context read")
        sw.post(inval_ddt(dv=0), iofence())
        await sw.wait(lambda: env.invals, bound=50, what="the invalidation")
        assert len(side.results) == 0, "the read should still be in flight"
        write_context(env, 7, en_ats=0, en_pri=0)
        await sw.wait(lambda: side.results, bound=200, what="the slow lookup")
        await sw.wait_idle()
        assert await look_up(sw, env, side, 7, bound=400) == 0
    side = simulate(bench, latency=60)
    assert [d for _, d in side.reads] == [7, 7]

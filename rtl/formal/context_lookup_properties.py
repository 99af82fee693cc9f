"""Properties of :class:`rtl.context_lookup.ContextLookup` (DESIGN §3 "Device
directory": after ``IODIR.INVAL_DDT`` no later request uses the old context).

The harness gives the lookup two devices (device index 0 and 1; wider device
IDs are free too) whose contexts in memory software may rewrite in any cycle,
free ``inval`` handshakes (DV=0 or DV=1), a memory that answers each context
read once, in order, with the context as it is in memory when it answers (any
response code), and a consumer ready whenever it likes.  ddtp is one
``AnyConst`` mode and PPN.

The property: a request accepted when every rewrite of its device's context
has been followed by an invalidation covering it, and whose context is not
rewritten again before the lookup answers, gets the context as it is in memory
(or a load fault).  Together with ``inval_before_fence`` (the command queue
completes a fence after IODIR.INVAL_DDT only once the invalidation handshake
has happened) this is DESIGN §3's "IODIR.INVAL_DDT followed by a fence means no
later request uses the old context".

Proof parameters: 16-bit memory addresses, 2 cached contexts.
"""

from amaranth.hdl import Array, Elaboratable, Module, Mux, Signal

from prifence.formats import DdtpMode, DeviceContextTc, PageRequest
from rtl.context_lookup import ContextLookup, ContextStatus, tc_misconfigured

from .env import ShadowFifo, any_const, any_seq, assume, check, cover, hold_reset_low

__all__ = ["ContextLookupProperties", "make_block"]

_ADDR_WIDTH = 16


class ContextLookupProperties(Elaboratable):
    """The context lookup with free inputs and the invalidation property."""

    def __init__(self, *, block=None):
        self.block = block if block is not None else make_block()

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        dut = m.submodules.dut = self.block

        mode = any_const(4)
        m.d.comb += [dut.ddtp.mode.eq(mode), dut.ddtp.ppn.eq(any_const(4)), dut.ddtp.written.eq(0)]

        # Memory: the two contexts, rewritten by software at will.
        mem = Array(Signal(64, name=f"dc{k}_tc") for k in range(2))
        writes = [any_seq(1) for _ in range(2)]
        for k in range(2):
            with m.If(writes[k]):
                m.d.sync += mem[k].eq(any_seq(64))

        # Invalidations.
        inv = dut.inval
        m.d.comb += [inv.valid.eq(any_seq(1)), inv.all.eq(any_seq(1)), inv.did.eq(any_seq(7))]
        assume(m, inv.did[1:] == 0)
        inval_fire = inv.valid & inv.ready
        dirty = Signal(2, name="rewritten_not_invalidated")
        for k in range(2):
            covered = inval_fire & (inv.all | (inv.did == k))
            with m.If(writes[k]):
                m.d.sync += dirty[k].eq(1)
            with m.Elif(covered):
                m.d.sync += dirty[k].eq(0)

        # Context reads.
        rd = dut.mem
        m.d.comb += rd.ar.ready.eq(any_seq(1))
        reads = ShadowFifo(1, 2, "read_index")
        ar_fire = rd.ar.valid & rd.ar.ready
        reads.push(m, ar_fire, rd.ar.p.addr[5])
        r_valid = any_seq(1) & (reads.count != 0)
        m.d.comb += [rd.r.valid.eq(r_valid), rd.r.p.data.eq(mem[reads.head]),
                     rd.r.p.resp.eq(any_seq(2)), rd.r.p.last.eq(1)]
        reads.pop(m, r_valid)
        reads.elaborate_into(m)

        # Requests: the tracked one is the n-th accepted.
        i, o = dut.i, dut.o
        m.d.comb += [i.valid.eq(any_seq(1)), i.p.eq(any_seq(PageRequest.as_shape().size)),
                     o.ready.eq(any_seq(1))]
        assume(m, i.p.did[1:7] == 0)
        n_in, n_out = Signal(6, name="requests_in"), Signal(6, name="requests_out")
        accept = i.valid & i.ready
        m.d.sync += [n_in.eq(n_in + accept), n_out.eq(n_out + (o.valid & o.ready))]
        assume(m, n_in != 63)
        t = any_const(6)
        t_did = Signal(24, name="t_did")
        t_clean = Signal(name="t_clean")
        t_k = t_did[0]
        with m.If(accept & (n_in == t)):
            m.d.sync += [t_did.eq(i.p.did),
                         t_clean.eq(~dirty.bit_select(i.p.did[0], 1)
                                    & ~Mux(i.p.did[0], writes[1], writes[0]))]
        with m.Elif(Mux(t_k, writes[1], writes[0])):
            m.d.sync += t_clean.eq(0)

        # The property.
        out_t = o.valid & (n_out == t) & (n_in > t)
        now = DeviceContextTc(mem[t_k])
        status = o.p.status
        expect = Signal(ContextStatus, name="expected_status")
        with m.If(~now.v):
            m.d.comb += expect.eq(ContextStatus.INVALID)
        with m.Elif(tc_misconfigured(now)):
            m.d.comb += expect.eq(ContextStatus.MISCONFIGURED)
        with m.Else():
            m.d.comb += expect.eq(ContextStatus.OK)
        judged = out_t & t_clean & (mode == DdtpMode.LVL1) & (t_did[7:] == 0)
        with m.If(judged):
            check(m, o.p.req.did == t_did)
            check(m, (status == ContextStatus.LOAD_FAULT) | (status == expect))
            with m.If(status == ContextStatus.OK):
                check(m, (o.p.dc.en_ats == now.en_ats) & (o.p.dc.en_pri == now.en_pri)
                      & (o.p.dc.dtf == now.dtf) & (o.p.dc.prpr == now.prpr))
        seen_inval = Signal(name="seen_invalidation")
        with m.If(inval_fire & ~inv.all):
            m.d.sync += seen_inval.eq(1)
        cover(m, judged & seen_inval & (status == ContextStatus.OK) & (n_in > 2))
        cover(m, judged & (status == ContextStatus.INVALID) & seen_inval)
        return m


def make_block(**overrides):
    """The context lookup with the proof parameters."""
    params = dict(addr_width=_ADDR_WIDTH, data_width=64, cache_entries=2)
    params.update(overrides)
    return ContextLookup(**params)

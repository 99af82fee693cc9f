# Device-context lookup of the page-request path (DESIGN.md §3 "Device
# directory (1LVL)", §4 rows "ddtp Off" to "DC misconfigured"; RISC-V IOMMU
# specification v1.0 §2.3 "Process to locate the Device-context").

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    DC_BYTES, DDT_INDEX_BITS, PAGE_SHIFT, DdtpMode, DeviceContextTc, PageRequest, codec,
)

from .bus import DdtpSignature, InvalidateSignature, MemReadSignature

__all__ = ["ContextStatus", "ContextFlags", "LookupResult", "ContextLookup"]


class ContextStatus(enum.Enum, shape=3):
    """What the lookup found for a request's device (the §4 rows it decides)."""
    OK = 0              # a valid, well-formed context: see ContextFlags
    OFF = 1             # ddtp Off
    BARE = 2            # ddtp Bare
    TOO_WIDE = 3        # device_id has bits above DDT_INDEX_BITS set
    LOAD_FAULT = 4      # the dw0 read answered other than OKAY
    INVALID = 5         # DC.V = 0
    MISCONFIGURED = 6   # formats.dc_misconfigured


#: The context bits the disposition needs (valid only with ContextStatus.OK).
ContextFlags = data.StructLayout({"en_ats": 1, "en_pri": 1, "dtf": 1, "prpr": 1})

#: A request together with its context.
LookupResult = data.StructLayout({
    "req": PageRequest, "status": ContextStatus, "dc": ContextFlags,
    # status OK with EN_ATS and EN_PRI: the context lets the request be queued
    # (registered here so the queue's decision starts from one flip-flop).
    "usable": 1,
})


def tc_misconfigured(tc):
    """Hardware mirror of :func:`prifence.formats.dc_misconfigured` (``tc`` a
    :class:`DeviceContextTc` view)."""
    reserved = (tc.as_value() & codec(DeviceContextTc).reserved_mask).any()
    return (reserved | (tc.en_pri & ~tc.en_ats) | (tc.prpr & ~tc.en_pri) | tc.t2gpa
            | (tc.dpe & ~tc.pdtv) | tc.gade | tc.sade | tc.sbe | tc.sxl)


def _or_all(values):
    result = values[0]
    for v in values[1:]:
        result = result | v
    return result


class ContextLookup(wiring.Component):
    """Find the device context of each page request, in arrival order.

    Parameters
    ----------
    addr_width, data_width : int
        Of the memory read client.
    cache_entries : int
        Number of cached device contexts (at least 1).

    Members
    -------
    i : In(stream.Signature(PageRequest))
    o : Out(stream.Signature(LookupResult))
        The request and its :class:`ContextStatus` (and :data:`ContextFlags`
        when OK; ``usable`` is status OK with EN_ATS and EN_PRI), in the order
        of ``i``.
    mem : Out(MemReadSignature)
        Reads DC dw0 (one 8-byte beat at ``ddtp.PPN << 12 | did[6:0] * 32``).
    ddtp : In(DdtpSignature)
    inval : In(InvalidateSignature)

    Contract
    --------
    * ddtp Off (or any mode other than Bare and 1LVL) → OFF; Bare → BARE; 1LVL
      with a device_id wider than 7 bits → TOO_WIDE, all without a memory read.
    * 1LVL: a cached context answers in one cycle (one request per clock);
      otherwise dw0 is read (one request at a time): a non-OKAY response is
      LOAD_FAULT, V=0 INVALID, a misconfigured ``tc`` MISCONFIGURED, else OK.
      Only OK contexts are cached (round-robin replacement).
    * An accepted ddtp write (``ddtp.written``) or an invalidation empties
      the covered cache entries in that cycle and stops a covered context read
      that is in flight from filling the cache; ``inval.ready`` is always
      high (the invalidation is complete in the cycle it is offered).  A
      request whose lookup finished before keeps its result.
    """

    def __init__(self, *, addr_width=56, data_width=64, cache_entries=8):
        if not isinstance(cache_entries, int) or cache_entries < 1:
            raise TypeError(f"cache_entries must be a positive integer, not {cache_entries!r}")
        self.addr_width, self.data_width = addr_width, data_width
        self.cache_entries = cache_entries
        super().__init__({
            "i": In(stream.Signature(PageRequest)),
            "o": Out(stream.Signature(LookupResult)),
            "mem": Out(MemReadSignature(addr_width=addr_width, data_width=data_width)),
            "ddtp": In(DdtpSignature()),
            "inval": In(InvalidateSignature()),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.cache_entries
        idx_bits = DDT_INDEX_BITS

        # --- the cache: valid bits, device indices and flags, in registers --------
        c_valid = Signal(n, name="cache_valid")
        c_did = [Signal(idx_bits, name=f"cache_did{k}") for k in range(n)]
        c_flags = [Signal(ContextFlags, name=f"cache_flags{k}") for k in range(n)]
        victim = Signal(range(max(n, 2)), name="cache_victim")

        # Invalidation requests of this cycle.
        m.d.comb += self.inval.ready.eq(1)
        inval_all = self.ddtp.written | (self.inval.valid & self.inval.all)
        inval_did = self.inval.valid & ~self.inval.all

        def covered(did):
            return inval_all | (inval_did & (self.inval.did == did))

        # --- the miss engine -----------------------------------------------------
        busy = Signal(name="miss_busy")          # a context read is outstanding
        issued = Signal(name="miss_ar_done")     # its AR has been taken
        no_fill = Signal(name="miss_no_fill")    # invalidated while in flight
        miss_req = Signal(PageRequest, name="miss_req")

        o_valid = self.o.valid
        o_free = ~o_valid | self.o.ready
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += o_valid.eq(0)

        req = self.i.p
        did_index = req.did[:idx_bits]
        too_wide = req.did[idx_bits:].any()
        hits = Cat(*(c_valid[k] & (c_did[k] == did_index) for k in range(n)))
        # At most one entry holds a device (a context is filled only on a miss,
        # and requests wait while the miss is in flight), so the hit entry's
        # flags are an AND-OR, not a priority chain.
        hit_flags = Signal(ContextFlags, name="hit_flags")
        hit_terms = [Value.cast(c_flags[k]) & hits[k].replicate(ContextFlags.size) for k in range(n)]
        m.d.comb += hit_flags.eq(_or_all(hit_terms))

        m.d.comb += self.i.ready.eq(~busy & o_free)
        with m.If(self.i.valid & self.i.ready):
            mode = self.ddtp.mode
            with m.If(mode == DdtpMode.BARE):
                m.d.sync += [o_valid.eq(1),
                             self.o.p.status.eq(ContextStatus.BARE), self.o.p.usable.eq(0)]
            with m.Elif(mode != DdtpMode.LVL1):
                m.d.sync += [o_valid.eq(1),
                             self.o.p.status.eq(ContextStatus.OFF), self.o.p.usable.eq(0)]
            with m.Elif(too_wide):
                m.d.sync += [o_valid.eq(1),
                             self.o.p.status.eq(ContextStatus.TOO_WIDE), self.o.p.usable.eq(0)]
            with m.Elif(hits.any()):
                m.d.sync += [o_valid.eq(1), self.o.p.status.eq(ContextStatus.OK),
                             self.o.p.dc.eq(hit_flags),
                             self.o.p.usable.eq(hit_flags.en_ats & hit_flags.en_pri)]
            with m.Else():
                m.d.sync += [busy.eq(1), issued.eq(0), no_fill.eq(covered(did_index))]
        # The request register loads whenever the output may change: the offered
        # request, or the missed one while its context read is in flight.  Its
        # load enable is then the output handshake, not the hit logic.
        with m.If(o_free):
            m.d.sync += self.o.p.req.eq(Mux(busy, miss_req, req))
        # The miss registers follow the offered request while no miss is in
        # flight, so their load enable is one flip-flop, not the hit logic.
        with m.If(~busy):
            dc_addr = ((self.ddtp.ppn << PAGE_SHIFT) | (did_index * DC_BYTES))[:self.addr_width]
            m.d.sync += [miss_req.eq(req), self.mem.ar.p.addr.eq(dc_addr)]

        # AR: one 8-byte beat.
        m.d.comb += [
            self.mem.ar.valid.eq(busy & ~issued),
            self.mem.ar.p.len.eq(0),
            self.mem.ar.p.size.eq(3),
            self.mem.r.ready.eq(1),
        ]
        with m.If(self.mem.ar.valid & self.mem.ar.ready):
            m.d.sync += issued.eq(1)
        with m.If(busy & covered(miss_req.did[:idx_bits])):
            m.d.sync += no_fill.eq(1)

        tc = data.View(DeviceContextTc, self.mem.r.p.data[:64])
        fill = Signal(name="cache_fill")
        with m.If(busy & issued & self.mem.r.valid):
            m.d.sync += [busy.eq(0), o_valid.eq(1)]
            with m.If(self.mem.r.p.resp != 0):
                m.d.sync += [self.o.p.status.eq(ContextStatus.LOAD_FAULT), self.o.p.usable.eq(0)]
            with m.Elif(~tc.v):
                m.d.sync += [self.o.p.status.eq(ContextStatus.INVALID), self.o.p.usable.eq(0)]
            with m.Elif(tc_misconfigured(tc)):
                m.d.sync += [self.o.p.status.eq(ContextStatus.MISCONFIGURED), self.o.p.usable.eq(0)]
            with m.Else():
                flags = Cat(tc.en_ats, tc.en_pri, tc.dtf, tc.prpr)
                m.d.sync += [self.o.p.status.eq(ContextStatus.OK), self.o.p.dc.eq(flags),
                             self.o.p.usable.eq(tc.en_ats & tc.en_pri)]
                m.d.comb += fill.eq(~no_fill & ~covered(miss_req.did[:idx_bits]))

        # --- cache updates: invalidations first, a fill never revives one ------------
        new_valid = Signal(n, name="cache_valid_next")
        m.d.comb += new_valid.eq(c_valid)
        for k in range(n):
            with m.If(covered(c_did[k])):
                m.d.comb += new_valid[k].eq(0)
        with m.If(fill):
            for k in range(n):
                with m.If(victim == k):
                    m.d.comb += new_valid[k].eq(1)
                    m.d.sync += [c_did[k].eq(miss_req.did[:idx_bits]),
                                 c_flags[k].eq(Cat(tc.en_ats, tc.en_pri, tc.dtf, tc.prpr))]
            m.d.sync += victim.eq(Mux(victim == n - 1, 0, victim + 1))
        m.d.sync += c_valid.eq(new_valid)
        return m

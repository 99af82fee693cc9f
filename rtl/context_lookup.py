# Device-context lookup of the page-request path (DESIGN.md §3 "Device
# directory (1LVL)", §4 rows "ddtp Off" to "DC misconfigured"; RISC-V IOMMU
# specification v1.0 §2.3 "Process to locate the Device-context").

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    DC_BYTES, DDT_INDEX_BITS, PAGE_SHIFT, Cause, DdtpMode, DeviceContextTc, PageRequest,
    ResponseCode, codec,
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

_ANSWER_FIELDS = {
    "status": ContextStatus, "dc": ContextFlags,
    # status OK with EN_ATS and EN_PRI: the context lets the request be queued
    # (registered here so the queue's decision starts from one flip-flop).
    "usable": 1,
    # The answer of the first matching context row of §4, also registered here
    # so that the queue's fault report and response start from flip-flops:
    # its response code (Response Failure when usable), its FQ cause, and
    # whether it reports a fault (not the EN_* row with DTF=1; never when usable).
    "code": 4,
    "cause": 12,
    "report": 1,
}
_Answer = data.StructLayout(_ANSWER_FIELDS)

#: A request together with its context.
LookupResult = data.StructLayout({"req": PageRequest, **_ANSWER_FIELDS})


def _misconfigured_terms(tc):
    """The terms whose OR is :func:`tc_misconfigured`: each reserved bit, then
    each rule of :func:`prifence.formats.dc_misconfigured`."""
    mask = codec(DeviceContextTc).reserved_mask
    value = tc.as_value()
    reserved = [value[b] for b in range(len(value)) if (mask >> b) & 1]
    return reserved + [tc.en_pri & ~tc.en_ats, tc.prpr & ~tc.en_pri, tc.t2gpa,
                       tc.dpe & ~tc.pdtv, tc.gade, tc.sade, tc.sbe.any(), tc.sxl.any()]


def tc_misconfigured(tc):
    """Hardware mirror of :func:`prifence.formats.dc_misconfigured` (``tc`` a
    :class:`DeviceContextTc` view)."""
    return Cat(*_misconfigured_terms(tc)).any()


def _usable(flags):
    """A well-formed context lets requests be queued (EN_ATS and EN_PRI)."""
    return flags.en_ats & flags.en_pri


def _report(flags):
    """A well-formed context's EN_* row reports a fault (not with DTF=1)."""
    return ~_usable(flags) & ~flags.dtf


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
    * A request is searched in the cycle it is taken on ``i`` and answered
      :attr:`HIT_LATENCY` cycles later (one request per clock) when the
      mode, its width or a cached context decides; otherwise (1LVL, not
      cached) dw0 is read, one request at a time, and no request is taken
      from the cycle before the read starts until its answer: a non-OKAY
      response is LOAD_FAULT, V=0 INVALID, a misconfigured ``tc``
      MISCONFIGURED, else OK.  The R beat is registered first; the answer is
      offered two cycles after the beat.  Only OK contexts are cached
      (round-robin replacement).
    * Every answer carries the §4 context row's ``code``, ``cause`` and
      ``report`` (see :data:`LookupResult`), so that the consumer acts on
      flip-flops only.
    * An accepted ddtp write (``ddtp.written``) or an invalidation is
      registered: the covered cache entries are emptied in the next cycle,
      when no request is accepted on ``i``, and a covered context read in
      flight is stopped from filling the cache (one answered in that very
      cycle does not fill, covered or not).  ``inval.ready`` is always high:
      no request accepted after the cycle an invalidation is offered can see
      a covered entry.  A request whose lookup finished before keeps its
      result.
    """

    #: Cycles from a request taken on ``i`` to its answer on ``o`` when no
    #: memory read is needed: one to search, one to form the answer.
    HIT_LATENCY = 2

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
        # An entry's contents matter only while its valid bit is set (every
        # use is gated by it): no reset, so their load enable is the fill alone.
        c_did = [Signal(idx_bits, name=f"cache_did{k}", reset_less=True) for k in range(n)]
        c_flags = [Signal(ContextFlags, name=f"cache_flags{k}", reset_less=True) for k in range(n)]
        # The entry's answer bits, decoded at the fill: usable and report.
        c_usable = Signal(n, name="cache_usable", reset_less=True)
        c_report = Signal(n, name="cache_report", reset_less=True)
        # The next entry to fill, one-hot (round robin), so that each
        # entry's fill enable is one gate.
        victim = Signal(n, name="cache_victim", init=1)

        # Invalidations are registered before they touch the cache (the command
        # queue's request arrives late in its cycle): the covered entries are
        # emptied one cycle later, and no request is looked up in that cycle,
        # so no lookup after the cycle ``inval.ready`` is seen can hit one.
        m.d.comb += self.inval.ready.eq(1)
        inval_any = Signal(name="inval_pending")     # some invalidation applies now
        inval_all = Signal(name="inval_pending_all")
        inval_one = Signal(name="inval_pending_one")
        inval_did = Signal(idx_bits, name="inval_pending_did")
        m.d.sync += [
            inval_any.eq(self.ddtp.written | self.inval.valid),
            inval_all.eq(self.ddtp.written | (self.inval.valid & self.inval.all)),
            inval_one.eq(self.inval.valid & ~self.inval.all),
            inval_did.eq(self.inval.did),
        ]

        def covered(did, name):
            # A balanced comparison (pairs of bits, then one gate), each
            # part a net of its own so that synthesis does not chain it.
            pairs = []
            for k, lo in enumerate(range(0, idx_bits, 2)):
                pair = Signal(name=f"{name}_{k}", attrs={"keep": 1})
                m.d.comb += pair.eq(inval_did[lo:lo + 2] == did[lo:lo + 2])
                pairs.append(pair)
            return inval_all | (inval_one & Cat(*pairs).all())

        # --- the miss engine -----------------------------------------------------
        busy = Signal(name="miss_busy")          # a context read is outstanding
        issued = Signal(name="miss_ar_done")     # its AR has been taken
        no_fill = Signal(name="miss_no_fill")    # invalidated while in flight

        o_valid = self.o.valid
        o_free = Signal(name="o_free")
        m.d.comb += o_free.eq(~o_valid | self.o.ready)
        # The output payload register has no reset (it matters only while
        # ``o.valid``, or while a read is in flight).  While a read is in
        # flight it holds the missed request (with ``o.valid`` low), so that
        # request needs no copy of its own.
        o_p = Signal(LookupResult, name="o_payload", reset_less=True)
        m.d.comb += self.o.p.eq(o_p)
        held = o_p.req

        # --- stage 1: the request taken from ``i``, with its cache search -------------
        # The search (mode, width, which entries hold the device) is
        # registered with the request; the answer is formed from those
        # registers as the request moves to the output.  An invalidation only
        # clears valid bits (a request taken before it may keep the old
        # context); a fill replaces an entry, so a request that found the
        # replaced entry is treated as a miss (its context is read again).
        s_valid = Signal(name="search_valid")
        s_req = Signal(PageRequest, name="search_req", reset_less=True)
        s_status = Signal(ContextStatus, name="search_status", reset_less=True)  # OK: found by the cache or a read
        s_hits = Signal(n, name="search_hits", reset_less=True)
        # A read answered since the search may have replaced the entry found:
        # the read count (mod 2) is kept with the search, and the entry the
        # last fill went to.
        reads_done = Signal(name="miss_reads_done")
        s_reads_done = Signal(name="search_reads_done", reset_less=True)
        last_fill = Signal(n, name="cache_last_fill")     # one-hot
        s_miss = Signal(name="search_miss")

        req = self.i.p
        did_index = req.did[:idx_bits]
        too_wide = Signal(name="search_too_wide", attrs={"keep": 1})
        m.d.comb += too_wide.eq(req.did[idx_bits:].any())
        hits = Cat(*(c_valid[k] & (c_did[k] == did_index) for k in range(n)))
        mode = self.ddtp.mode
        status_now = Signal(ContextStatus, name="search_status_now")
        with m.If(mode == DdtpMode.BARE):
            m.d.comb += status_now.eq(ContextStatus.BARE)
        with m.Elif(mode != DdtpMode.LVL1):
            m.d.comb += status_now.eq(ContextStatus.OFF)
        with m.Elif(too_wide):
            m.d.comb += status_now.eq(ContextStatus.TOO_WIDE)
        with m.Else():
            m.d.comb += status_now.eq(ContextStatus.OK)

        # The stage moves on (to the output, or to the miss engine) when the
        # output may load and no read is in flight.
        # (With ``o_empty`` below: one gate of flip-flops and ``o.ready``.)
        s_go = Signal(name="search_go", attrs={"keep": 1})
        # No request is taken while a read is in flight, nor in the cycle an
        # invalidation empties the cache: both in one register (``i_open``),
        # so that ``i.ready`` is one gate from flip-flops.
        #
        # "No read in flight and the output empty" is a register of its own
        # (``o_empty``), so that the stage's enable and ``i.ready`` are one
        # gate of flip-flops and ``o.ready``.
        # Exact: while a read is in flight neither holds next cycle (it ends
        # with ``o.valid``); otherwise both hold next cycle just when the
        # output is free now and the stage is empty (a stage that moves on
        # either starts a read or loads the output).
        o_empty = Signal(name="o_empty", init=1)
        # (written without the ``o_free`` net, which reaches every enable of
        # the output register)
        # (selected by ``o.ready`` last)
        empty_if_taken = Signal(name="o_empty_if_taken", attrs={"keep": 1})
        empty_if_held = Signal(name="o_empty_if_held", attrs={"keep": 1})
        m.d.comb += [empty_if_taken.eq(~busy & ~s_valid),
                     empty_if_held.eq(~busy & ~s_valid & ~o_valid)]
        m.d.sync += o_empty.eq(Mux(self.o.ready, empty_if_taken, empty_if_held))
        m.d.comb += s_go.eq(s_valid & (o_empty | (self.o.ready & ~busy)))    # s_valid & o_free & ~busy
        i_open = Signal(name="search_open", init=1)
        i_ready = Signal(name="search_ready", attrs={"keep": 1})
        # (``o_empty`` stands for ``~o.valid``: while a read is in flight
        # ``i_open`` is low.)
        m.d.comb += [i_ready.eq(i_open & (~s_valid | o_empty | self.o.ready)),
                     self.i.ready.eq(i_ready)]
        accept = self.i.valid & self.i.ready
        # The stage's registers load whenever it is free or moves on (their
        # load enable is one gate from flip-flops, not the search; they have
        # no reset, since they matter only while ``search_valid``).
        s_load = Signal(name="search_load", attrs={"keep": 1})
        m.d.comb += s_load.eq(~s_valid | o_empty | (self.o.ready & ~busy))
        with m.If(s_load):      # ~s_valid | s_go
            m.d.sync += [
                s_valid.eq(accept), s_req.eq(req), s_status.eq(status_now), s_hits.eq(hits),
                s_reads_done.eq(reads_done),
            ]

        s_stale = (s_reads_done != reads_done) & (s_hits & last_fill).any()
        m.d.comb += s_miss.eq((s_status == ContextStatus.OK) & (~s_hits.any() | s_stale))

        # At most one entry holds a device (a context is filled only on a miss,
        # and requests wait while the miss is in flight), so the hit entry's
        # flags are an AND-OR, not a priority chain.
        hit_flags = Signal(ContextFlags, name="hit_flags")
        hit_terms = [Value.cast(c_flags[k]) & s_hits[k].replicate(ContextFlags.size) for k in range(n)]
        m.d.comb += hit_flags.eq(_or_all(hit_terms))
        hit_usable = (s_hits & c_usable).any()
        hit_report = (s_hits & c_report).any()

        def answer(status, code=None, cause=None, report=1, flags=None, usable=None):
            """The :data:`_Answer` of one §4 context row (``flags`` for OK;
            ``usable`` and ``report`` decoded from them, when given)."""
            if status != ContextStatus.OK:
                return _Answer.const({"status": status, "code": code, "cause": cause,
                                      "report": report}).as_value()
            if usable is None:
                usable, report = _usable(flags), _report(flags)
            fields = {
                "status": Const(status.value, 3), "dc": flags.as_value(), "usable": usable,
                "code": Mux(usable, ResponseCode.RESPONSE_FAILURE, ResponseCode.INVALID_REQUEST),
                "cause": Const(Cause.TRANSACTION_TYPE_DISALLOWED, 12),
                "report": report,
            }
            return Cat(*(fields[name] for name in _ANSWER_FIELDS))

        # The answer without a memory read (mode, width, cache hit).
        now = Signal(_Answer, name="answer_now")
        with m.Switch(s_status):
            with m.Case(ContextStatus.BARE):
                m.d.comb += now.eq(answer(ContextStatus.BARE, ResponseCode.INVALID_REQUEST,
                                          Cause.TRANSACTION_TYPE_DISALLOWED))
            with m.Case(ContextStatus.TOO_WIDE):
                m.d.comb += now.eq(answer(ContextStatus.TOO_WIDE, ResponseCode.INVALID_REQUEST,
                                          Cause.TRANSACTION_TYPE_DISALLOWED))
            with m.Case(ContextStatus.OK):
                m.d.comb += now.eq(answer(ContextStatus.OK, flags=hit_flags, usable=hit_usable,
                                          report=hit_report))
            with m.Default():
                m.d.comb += now.eq(answer(ContextStatus.OFF, ResponseCode.RESPONSE_FAILURE,
                                          Cause.ALL_INBOUND_DISALLOWED))

        # The R beat of a context read is registered, partly decoded, before
        # it decides anything: the answer and the cache fill come a cycle later.
        tc = data.View(DeviceContextTc, self.mem.r.p.data[:64])
        r_done = Signal(name="miss_r_done")      # the beat arrived last cycle
        r_fault = Signal(name="miss_r_fault")
        r_v = Signal(name="miss_r_v")
        # OKAY, V=1 and well formed: the context may be cached.  Registered
        # whole (tc_misconfigured is an OR of about fifty bits, three gates
        # from the R beat), so that the fill is one gate; with OKAY and V=1 it
        # is also "not misconfigured".
        r_ok = Signal(name="miss_r_ok")
        r_flags = Signal(ContextFlags, name="miss_r_flags")
        m.d.sync += [
            r_done.eq(busy & issued & self.mem.r.valid),
            r_fault.eq(self.mem.r.p.resp != 0),
            r_v.eq(tc.v),
            r_ok.eq((self.mem.r.p.resp == 0) & tc.v & ~tc_misconfigured(tc)),
            r_flags.eq(Cat(tc.en_ats, tc.en_pri, tc.dtf, tc.prpr)),
        ]
        read = Signal(_Answer, name="answer_read")
        with m.If(r_fault):
            m.d.comb += read.eq(answer(ContextStatus.LOAD_FAULT, ResponseCode.RESPONSE_FAILURE,
                                       Cause.DDT_LOAD_FAULT))
        with m.Elif(~r_v):
            m.d.comb += read.eq(answer(ContextStatus.INVALID, ResponseCode.RESPONSE_FAILURE,
                                       Cause.DDT_INVALID))
        with m.Elif(~r_ok):
            m.d.comb += read.eq(answer(ContextStatus.MISCONFIGURED, ResponseCode.RESPONSE_FAILURE,
                                       Cause.DDT_MISCONFIGURED))
        with m.Else():
            m.d.comb += read.eq(answer(ContextStatus.OK, flags=r_flags))

        # --- stage 2: the output register ------------------------------------------------
        # It loads whenever it may change: from the search stage (a miss
        # leaves it with ``o.valid`` low and starts the read), or, while the
        # read is in flight, with the read's answer.
        # The request's bits load only from the search stage (while a read
        # is in flight they hold the missed request): their enable is one
        # gate of flip-flops and ``o.ready``, a net of its own.
        load_req = Signal(name="o_load_req", attrs={"keep": 1})
        m.d.comb += load_req.eq(~busy & (~o_valid | self.o.ready))
        with m.If(load_req):
            m.d.sync += o_p.req.eq(s_req)
        with m.If(o_free):
            m.d.sync += o_valid.eq(Mux(busy, r_done, s_valid & ~s_miss))
            m.d.sync += o_p.as_value()[PageRequest.as_shape().size:].eq(Mux(busy, read, now))
        busy_next = ~r_done & (busy | (s_go & s_miss))
        m.d.sync += busy.eq(busy_next)
        m.d.sync += i_open.eq(~busy_next & ~(self.ddtp.written | self.inval.valid))
        # The read's address follows the search stage while no read is in flight.
        with m.If(~busy):
            dc_addr = ((self.ddtp.ppn << PAGE_SHIFT) | (s_req.did[:idx_bits] * DC_BYTES))[:self.addr_width]
            m.d.sync += self.mem.ar.p.addr.eq(dc_addr)

        # AR: one 8-byte beat.
        m.d.comb += [
            self.mem.ar.valid.eq(busy & ~issued),
            self.mem.ar.p.len.eq(0),
            self.mem.ar.p.size.eq(3),
            self.mem.r.ready.eq(1),
        ]
        # Both follow the idle state until a read starts (a read that starts
        # as an invalidation applies does not fill either).
        with m.If(~busy):
            m.d.sync += [issued.eq(0), no_fill.eq(inval_any)]
        with m.Else():
            with m.If(self.mem.ar.valid & self.mem.ar.ready):
                m.d.sync += issued.eq(1)
            with m.If(covered(held.did[:idx_bits], "inval_hits_held")):
                m.d.sync += no_fill.eq(1)

        # A read answered in the cycle an invalidation applies does not fill,
        # covered or not (not filling is always safe).
        fill = Signal(name="cache_fill", attrs={"keep": 1})
        m.d.comb += fill.eq(r_done & r_ok & ~no_fill & ~inval_any)

        # --- cache updates: invalidations first, a fill never revives one ------------
        new_valid = Signal(n, name="cache_valid_next")
        m.d.comb += new_valid.eq(c_valid)
        for k in range(n):
            with m.If(covered(c_did[k], f"inval_hits{k}")):
                m.d.comb += new_valid[k].eq(0)
        with m.If(r_done):
            m.d.sync += reads_done.eq(~reads_done)
        with m.If(fill):
            m.d.sync += last_fill.eq(victim)
            for k in range(n):
                with m.If(victim[k]):
                    m.d.comb += new_valid[k].eq(1)
                    m.d.sync += [c_did[k].eq(held.did[:idx_bits]), c_flags[k].eq(r_flags),
                                 c_usable[k].eq(_usable(r_flags)), c_report[k].eq(_report(r_flags))]
            m.d.sync += victim.eq(Cat(victim[-1], victim[:-1]))
        m.d.sync += c_valid.eq(new_valid)
        return m

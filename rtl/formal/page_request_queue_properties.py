"""Properties of :class:`rtl.page_request_queue.PageRequestQueue` (DESIGN §2 queue
rules, §4 disposition, §7.6), proved on the block itself.

The harness drives every input freely within the environment's rules and follows
the block's outputs with a software view of the page-request queue:

* ``page_req`` is free, except that each request carries its arrival number in
  ``addr`` (the page address takes no part in any decision, so this restricts
  nothing) — the records it writes are thereby tagged.
* One request, the *tracked* one (its arrival number an ``AnyConst``), is
  followed through the block ("pick an arbitrary transaction"); no other
  accepted request shares its PRGI, so its auto-response is recognised.
* The device context is one ``AnyConst`` doubleword for every device (and one
  ``AnyConst`` load-fault bit), ddtp one ``AnyConst`` mode: the context rows of
  §4 are then fixed per trace and the expected disposition is known.
* The record-write memory accepts AW and W whenever it likes and answers each
  burst once, in order, only after its AW and last W (any response code).
* Software: pqen free; pqb and LOG2SZ-1 (0 or 1: 2 or 4 entries) fixed; pqh moves
  only over published records, or back to 0 while the queue is off; pqen rises
  only with pqh = 0; pqmf/pqof are set by the block and cleared by software at
  any time (a set wins), and clear when pqen is set (as the register file does,
  see ``registers_properties``).

Proof parameters (small, stated): 16-bit memory addresses, ingress FIFO of 2,
one cached context, 2 requests in flight.
"""

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal

from prifence.formats import (
    PQ_RECORD_BYTES, DdtpMode, DeviceContextTc, PageRequest, PqRecord, ResponseCode,
    is_stop_marker,
)
from rtl.context_lookup import tc_misconfigured
from rtl.page_request_queue import PageRequestQueue

from .env import (
    ShadowFifo, any_const, any_seq, assume, check, cover, hold_reset_low, software_queue,
)

__all__ = ["PageRequestQueueProperties", "PQ_CHECKS"]

#: The property groups of this harness (one proof each).
PQ_CHECKS = ("pq_order", "pq_no_overwrite", "pq_publish_acked", "pq_stopped_no_write",
             "pq_auto_response")

_ADDR_WIDTH = 16
_SLOTS = 4          # largest queue the proof allows (LOG2SZ-1 = 1)
_TAG = 8            # arrival numbers (far beyond any proof depth)


class PageRequestQueueProperties(Elaboratable):
    """The page-request queue with free inputs, environment assumptions and one
    group of properties (``check``, one of :data:`PQ_CHECKS`).

    ``block`` builds the block under proof (default: the shipped
    :class:`PageRequestQueue` with the proof parameters); a test passes a
    deliberately broken variant instead to show the property can fail."""

    def __init__(self, *, check, block=None):
        if check not in PQ_CHECKS:
            raise TypeError(f"check must be one of {PQ_CHECKS}, not {check!r}")
        self.check = check
        self.block = block if block is not None else make_block()

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        dut = m.submodules.dut = self.block
        regs = dut.regs
        chk = self.check

        # --- software: registers ------------------------------------------------
        mask, base, enable, enabling = software_queue(m, regs, addr_width=_ADDR_WIDTH)
        pqh = Signal(2, name="sw_pqh")
        pqmf, pqof = Signal(name="sw_pqmf"), Signal(name="sw_pqof")
        on = regs.on
        pqt = Signal(2, name="hw_pqt")
        m.d.comb += pqt.eq(regs.hw_index[:2])
        m.d.comb += [
            regs.sw_index.eq(pqh), regs.status.pqmf.eq(pqmf), regs.status.pqof.eq(pqof),
        ]
        check(m, (regs.hw_index & ~Cat(mask, Const(0, 30))) == 0)
        restart = enable & ~on                 # pqen seen 1 while pqon = 0
        assume(m, ~restart | (pqh == 0))
        consume, rebase = any_seq(1), any_seq(1)
        with m.If(~enable & ~on & rebase):
            m.d.sync += pqh.eq(0)
        with m.Elif(consume & (pqh != pqt)):
            m.d.sync += pqh.eq((pqh + 1) & mask)
        clear_mf, clear_of = any_seq(1), any_seq(1)
        for bit, clear, set_ in ((pqmf, clear_mf, regs.set_status.pqmf),
                                 (pqof, clear_of, regs.set_status.pqof)):
            with m.If(set_):
                m.d.sync += bit.eq(1)
            with m.Elif(clear | enabling):
                m.d.sync += bit.eq(0)

        # --- ddtp and device contexts -----------------------------------------------
        mode = any_const(4)
        tc_bits = any_const(64)
        ctx_fault = any_const(1)
        m.d.comb += [dut.ddtp.mode.eq(mode), dut.ddtp.ppn.eq(any_const(8)), dut.ddtp.written.eq(0),
                     dut.inval.valid.eq(0)]
        ctx = dut.ctx_mem
        ctx_pending = Signal(2, name="ctx_reads_pending")
        m.d.comb += ctx.ar.ready.eq(any_seq(1))
        r_valid = any_seq(1) & (ctx_pending != 0)
        m.d.comb += [ctx.r.valid.eq(r_valid), ctx.r.p.data.eq(tc_bits),
                     ctx.r.p.resp.eq(Mux(ctx_fault, 2, 0)), ctx.r.p.last.eq(1)]
        ar_fire = ctx.ar.valid & ctx.ar.ready
        m.d.sync += ctx_pending.eq(ctx_pending + ar_fire - r_valid)
        check(m, ~(ar_fire & (ctx_pending == 3)))

        # --- consumers of auto-responses and fault reports ---------------------------------
        m.d.comb += [dut.resp.ready.eq(any_seq(1)), dut.fault.ready.eq(any_seq(1))]

        # --- page requests: arrival numbers, the tracked request ----------------------------
        req = dut.page_req
        seq = Signal(_TAG, name="arrivals")
        m.d.comb += [req.valid.eq(any_seq(1)), req.p.eq(any_seq(PageRequest.as_shape().size))]
        assume(m, ~req.valid | (req.p.addr == seq))
        accept = req.valid & req.ready
        m.d.sync += seq.eq(seq + accept)
        assume(m, seq != (1 << _TAG) - 1)

        t_seq = any_const(_TAG)
        t_prgi = any_const(9)
        t_accept = accept & (seq == t_seq)
        assume(m, ~(accept & (seq != t_seq) & (req.p.prgi == t_prgi)))
        assume(m, ~t_accept | (req.p.prgi == t_prgi))
        t_req = Signal(PageRequest, name="t_req")
        t_seen = Signal(name="t_accepted")
        with m.If(t_accept):
            m.d.sync += [t_req.eq(req.p), t_seen.eq(1)]

        # --- record writes: the memory and its bookkeeping ---------------------------------
        mem = dut.rec_mem
        beats = PQ_RECORD_BYTES * 8 // 64
        m.d.comb += [mem.aw.ready.eq(any_seq(1)), mem.w.ready.eq(any_seq(1))]
        aw_fire = mem.aw.valid & mem.aw.ready
        w_fire = mem.w.valid & mem.w.ready
        w_last_fire = w_fire & mem.w.p.last
        aw_slots = ShadowFifo(2, 4, "aw_slot")          # slots of AWs without their B
        w_tags = ShadowFifo(_TAG, 4, "w_tag")           # tags of W bursts without their B
        b_allowed = (aw_slots.count != 0) & (w_tags.count != 0)
        b_valid = any_seq(1) & b_allowed
        b_resp = any_seq(2)
        m.d.comb += [mem.b.valid.eq(b_valid), mem.b.p.resp.eq(b_resp)]
        aw_addr = mem.aw.p.addr
        aw_slot = Signal(2, name="aw_slot_index")
        m.d.comb += aw_slot.eq(aw_addr[4:6])
        aw_slots.push(m, aw_fire, aw_slot)
        aw_slots.pop(m, b_valid)
        w_beat = Signal(range(beats), name="w_beat")
        w_dw0 = Signal(64, name="w_dw0")
        with m.If(w_fire):
            m.d.sync += [w_beat.eq(Mux(mem.w.p.last, 0, w_beat + 1)), w_dw0.eq(mem.w.p.data)]
        w_record = Signal(PqRecord, name="w_record")
        m.d.comb += w_record.eq(Cat(w_dw0, mem.w.p.data))
        w_tag = Signal(_TAG, name="w_tag_now")
        m.d.comb += w_tag.eq(w_record.addr[:_TAG])
        w_tags.push(m, w_last_fire, w_tag)
        w_tags.pop(m, b_valid)
        aw_slots.elaborate_into(m)
        w_tags.elaborate_into(m)

        # Per slot: the tag of the last record acknowledged OKAY there, and whether a
        # write to it is issued and not yet acknowledged.
        slot_tag = Array(Signal(_TAG, name=f"slot{k}_tag") for k in range(_SLOTS))
        slot_ok = Signal(_SLOTS, name="slot_acked")
        slot_busy = Signal(_SLOTS, name="slot_write_in_flight")
        b_slot = aw_slots.head
        b_ok = b_valid & (b_resp == 0)
        for k in range(_SLOTS):
            busy_others = Cat(*(aw_slots.entries[j] == k for j in range(4))) & \
                Cat(*(aw_slots.count > j for j in range(4)))
            m.d.comb += slot_busy[k].eq(busy_others.any())
            with m.If(aw_fire & (aw_slot == k)):
                m.d.sync += slot_ok[k].eq(0)
            with m.Elif(b_valid & (b_slot == k)):
                m.d.sync += [slot_ok[k].eq(b_ok), slot_tag[k].eq(w_tags.head)]

        # Publication: pqt moves by one while the queue stays on.
        pqt_prev = Signal(2, name="pqt_prev")
        on_prev = Signal(name="on_prev")
        m.d.sync += [pqt_prev.eq(pqt), on_prev.eq(on)]
        publish = on_prev & on & (pqt != pqt_prev)
        pub_slot = pqt_prev
        pub_tag = slot_tag[pub_slot]

        # --- properties ---------------------------------------------------------------
        if chk == "pq_order":
            # Records are written, and published, in arrival order.
            last_w, have_w = Signal(_TAG, name="last_written_tag"), Signal(name="have_written")
            last_p, have_p = Signal(_TAG, name="last_published_tag"), Signal(name="have_published")
            with m.If(w_last_fire):
                m.d.sync += [last_w.eq(w_tag), have_w.eq(1)]
                check(m, ~have_w | (w_tag > last_w))
            with m.If(publish):
                m.d.sync += [last_p.eq(pub_tag), have_p.eq(1)]
                check(m, ~have_p | (pub_tag > last_p))
            cover(m, publish & have_p)                  # a second record published after the first
            cover(m, w_last_fire & have_w & (w_tag > last_w + 1))

        if chk == "pq_no_overwrite":
            # A record goes inside the ring, never onto a published record software
            # has not consumed nor onto a record whose write is still in flight.
            unconsumed = (pqt - pqh) & mask
            check(m, ~aw_fire | (aw_addr[12:] == base))
            check(m, ~aw_fire | (aw_addr[:4] == 0))
            check(m, ~aw_fire | ((aw_addr[4:12] & ~Cat(mask, Const(0, 6))) == 0))
            check(m, ~aw_fire | ~((aw_slot - pqh) & mask < unconsumed))
            check(m, ~aw_fire | ~slot_busy.bit_select(aw_slot, 1))
            cover(m, aw_fire & (unconsumed != 0))       # written beside an unconsumed record
            cover(m, aw_fire & (aw_slots.count == 1))

        if chk == "pq_publish_acked":
            # pqt moves past a record only once its write was acknowledged OKAY.
            check(m, ~publish | slot_ok.bit_select(pub_slot, 1))
            check(m, ~publish | ~slot_busy.bit_select(pub_slot, 1))
            cover(m, publish & (aw_slots.count != 0))
            cover(m, b_valid & (b_resp != 0))

        if chk == "pq_stopped_no_write":
            # A request that arrives while pqmf or pqof is set, or pqen is 0, and
            # finds it so until it is decided, is not written.
            stopped = pqmf | pqof | ~enable
            held = Signal(name="t_stopped_since_arrival")
            with m.If(t_accept):
                m.d.sync += held.eq(stopped)
            with m.Elif(~stopped):
                m.d.sync += held.eq(0)
            t_written = w_last_fire & t_seen & (w_tag == t_seq)
            check(m, ~(t_written & held))
            cover(m, held & t_seen & dut.resp.valid & (dut.resp.p.prgi == t_prgi)
                  & (dut.resp.p.code == ResponseCode.SUCCESS))
            cover(m, t_written & pqof)

        if chk == "pq_auto_response":
            self._auto_response(m, dut, mode, tc_bits, ctx_fault, t_req, t_seen, t_seq, t_prgi,
                                publish, pub_tag)
        return m

    def _auto_response(self, m, dut, mode, tc_bits, ctx_fault, t_req, t_seen, t_seq, t_prgi,
                       publish, pub_tag):
        # Every L=1 request that is not queued gets exactly one auto-response, with
        # the code of DESIGN §4; other requests get none.
        tc = DeviceContextTc(tc_bits)
        resp = dut.resp
        t_resp = resp.valid & resp.ready & (resp.p.prgi == t_prgi)
        n_resp = Signal(2, name="t_responses")
        published = Signal(name="t_published")
        m.d.sync += n_resp.eq(n_resp + t_resp)
        with m.If(publish & t_seen & (pub_tag == t_seq)):
            m.d.sync += published.eq(1)
        respond = t_req.l & ~is_stop_marker(t_req.pv, t_req.l, t_req.r, t_req.w)

        RF, IR, OK = ResponseCode.RESPONSE_FAILURE, ResponseCode.INVALID_REQUEST, ResponseCode.SUCCESS
        ctx_code = Signal(4, name="expected_code")
        ctx_row = Signal(name="context_row_decides")
        usable = Signal(name="context_usable")
        m.d.comb += ctx_row.eq(1)
        with m.If(mode == DdtpMode.BARE):
            m.d.comb += ctx_code.eq(IR)
        with m.Elif(mode != DdtpMode.LVL1):
            m.d.comb += ctx_code.eq(RF)
        with m.Elif(t_req.did[7:] != 0):
            m.d.comb += ctx_code.eq(IR)
        with m.Elif(ctx_fault | ~tc.v | tc_misconfigured(tc)):
            m.d.comb += ctx_code.eq(RF)
        with m.Elif(~tc.en_ats | ~tc.en_pri):
            m.d.comb += [ctx_code.eq(IR), usable.eq(1)]
        with m.Else():
            m.d.comb += [ctx_row.eq(0), usable.eq(1)]
        code = resp.p.code
        with m.If(t_resp):
            check(m, t_seen & respond)
            check(m, n_resp == 0)
            check(m, ~published)
            check(m, resp.p.did == t_req.did)
            check(m, Mux(ctx_row, code == ctx_code, (code == RF) | (code == OK)))
            with_pasid = t_req.pv & ((code == RF) | (usable & tc.prpr))
            check(m, resp.p.pv == with_pasid)
            check(m, resp.p.pid == Mux(with_pasid, t_req.pid, 0))
        with m.If(publish & t_seen & (pub_tag == t_seq)):
            check(m, n_resp == 0)
        # Retirement (pr_retired passes the tracked request) is its disposal.
        retired_prev = Signal(16, name="retired_prev")
        m.d.sync += retired_prev.eq(dut.pr_retired)
        t_retired = t_seen & (dut.pr_retired != retired_prev) & (retired_prev[:8] == t_seq)
        published_now = published | (publish & t_seen & (pub_tag == t_seq))
        with m.If(t_retired):
            check(m, Mux(respond, (n_resp + published_now) == 1, n_resp == 0))
        cover(m, t_retired & respond & (n_resp == 1) & ~ctx_row)
        cover(m, t_retired & respond & published_now)
        cover(m, t_resp & ctx_row & (code == IR))


def make_block(**overrides):
    """The page-request queue with the proof parameters."""
    params = dict(addr_width=_ADDR_WIDTH, data_width=64, ingress_depth=2, dc_cache_entries=1,
                  max_in_flight=2)
    params.update(overrides)
    return PageRequestQueue(**params)

"""Properties of :class:`rtl.command_queue.CommandQueue` (DESIGN §3 "Commands",
§2 queue rules, §7.6), proved on the block itself.

The harness gives the block:

* a command ring of up to 4 entries (LOG2SZ-1 an ``AnyConst`` 0 or 1) whose
  entries are ``AnyConst`` 128-bit words — any command, legal or not, in any
  order — and a memory that answers fetches in order, two beats each, with any
  response code, only for fetches it was given;
* an AV-store memory that answers once per store, after its AW and W, with any
  code; ``resp`` (``prg_resp`` through the arbiter, which holds nothing) and
  ``inval`` ready whenever they like;
* page-request counters that behave like the page-request path's
  (``pr_retired`` never passes ``pr_accepted``);
* software: cqen free; cqb fixed; cqt moves forward one entry at a time while
  the ring is not full, or back to 0 while the queue is off; the status bits are
  set by the block, cleared by software at any time and cleared when cqen is
  set (as the register file does, see ``registers_properties``).

Proof parameters: 16-bit memory addresses, prefetch depth 3 (the block's
slot count sees a freed slot a cycle late, so three commands in flight reach
a fence after two ATS.PRGR within the 16 cycles; the buffer memory has 4
slots, as at depth 2).
"""

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal, Value

from prifence.formats import (
    COMMAND_BYTES, DDT_INDEX_BITS, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD,
    FUNC3_PRGR, CommandHeader, InvalDdtCmd, IofenceCmd, Opcode, PrgrCmd, reserved_field_names,
)
from rtl.bus import PD_COUNT_WIDTH
from rtl.command_queue import STATUS_SET_DELAY, CommandQueue

from .env import (
    ShadowFifo, any_const, any_seq, check, cover, hold_reset_low, modular_ge, software_queue,
)

__all__ = ["CommandQueueProperties", "CQ_CHECKS", "make_block", "command_legal"]

CQ_CHECKS = ("fence_c_after_prgr", "fence_pd_drain", "cq_error_stop", "inval_before_fence")

_ADDR_WIDTH = 16
_SLOTS = 4


def command_legal(bits, addr_width):
    """DESIGN §3's legality of a 128-bit command (spec side of the proof)."""
    hdr = CommandHeader(bits)
    fence, inval, prgr = IofenceCmd(bits), InvalDdtCmd(bits), PrgrCmd(bits)

    def clean(view, layout):
        return Cat(*(Value.cast(view[name]) != 0 for name in reserved_field_names(layout))) == 0

    is_c = (hdr.opcode == Opcode.IOFENCE_C) & (hdr.func3 == FUNC3_IOFENCE_C)
    is_pd = (hdr.opcode == Opcode.IOFENCE_PD) & (hdr.func3 == FUNC3_IOFENCE_PD)
    is_inval = (hdr.opcode == Opcode.IODIR) & (hdr.func3 == FUNC3_INVAL_DDT)
    is_prgr = (hdr.opcode == Opcode.ATS) & (hdr.func3 == FUNC3_PRGR)
    # The AV store goes to ADDR * 4, which must fit in the memory address.
    fence_ok = clean(fence, IofenceCmd) & (Value.cast(fence.addr)[addr_width - 2:] == 0)
    inval_ok = clean(inval, InvalDdtCmd) & (inval.pid == 0) & \
        ~(inval.dv & (Value.cast(inval.did)[DDT_INDEX_BITS:] != 0))
    return ((is_c | is_pd) & fence_ok) | (is_inval & inval_ok) | (is_prgr & clean(prgr, PrgrCmd))


class CommandQueueProperties(Elaboratable):
    """The command queue with free inputs, environment assumptions and one group
    of properties (``check``, one of :data:`CQ_CHECKS`); ``block`` as in
    :class:`rtl.formal.page_request_queue_properties.PageRequestQueueProperties`."""

    def __init__(self, *, check, block=None):
        if check not in CQ_CHECKS:
            raise TypeError(f"check must be one of {CQ_CHECKS}, not {check!r}")
        self.check = check
        self.block = block if block is not None else make_block()

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        dut = m.submodules.dut = self.block
        regs = dut.regs
        chk = self.check

        # --- software ----------------------------------------------------------------
        mask, base, enable, enabling = software_queue(m, regs, addr_width=_ADDR_WIDTH)
        on = regs.on
        cqh = Signal(2, name="hw_cqh")
        m.d.comb += cqh.eq(regs.hw_index[:2])
        cqt = Signal(2, name="sw_cqt")
        status = {name: Signal(name=f"sw_{name}") for name in ("cqmf", "cmd_ill", "fence_w_ip")}
        m.d.comb += regs.sw_index.eq(cqt)
        restart = enable & ~on
        for name, bit in status.items():
            m.d.comb += getattr(regs.status, name).eq(bit)
            with m.If(getattr(regs.set_status, name)):
                m.d.sync += bit.eq(1)
            with m.Elif(any_seq(1) | enabling):
                m.d.sync += bit.eq(0)
        check(m, (regs.hw_index & ~Cat(mask, Const(0, 30))) == 0)
        produce, rebase = any_seq(1), any_seq(1)
        with m.If(~enable & ~on & rebase):
            m.d.sync += cqt.eq(0)
        with m.Elif(produce & (((cqt + 1) & mask) != cqh)):
            m.d.sync += cqt.eq((cqt + 1) & mask)

        # --- the command ring and its memory ---------------------------------------------
        cmds = Array(Signal(COMMAND_BYTES * 8, name=f"cmd{k}") for k in range(_SLOTS))
        for k in range(_SLOTS):
            m.d.comb += cmds[k].eq(any_const(COMMAND_BYTES * 8))
        fetch = dut.fetch
        m.d.comb += fetch.ar.ready.eq(any_seq(1))
        ar_fire = fetch.ar.valid & fetch.ar.ready
        ar_addr = fetch.ar.p.addr
        check(m, ~fetch.ar.valid | ((ar_addr[12:] == base) & (ar_addr[:4] == 0)
                                    & ((ar_addr[4:12] & ~Cat(mask, Const(0, 6))) == 0)))
        fetches = ShadowFifo(2, 4, "fetch_slot")
        fetches.push(m, ar_fire, ar_addr[4:6])
        beat = Signal(name="r_beat")
        r_valid = any_seq(1) & (fetches.count != 0)
        r_resp = any_seq(2)
        word = cmds[fetches.head]
        m.d.comb += [fetch.r.valid.eq(r_valid), fetch.r.p.resp.eq(r_resp), fetch.r.p.last.eq(beat),
                     fetch.r.p.data.eq(Mux(beat, word[64:], word[:64]))]
        fetches.pop(m, r_valid & beat)
        fetches.elaborate_into(m)
        low_fault = Signal(name="r_low_fault")
        fetched_fault = Signal(_SLOTS, name="fetched_fault")
        with m.If(r_valid):
            m.d.sync += [beat.eq(~beat), low_fault.eq(r_resp != 0)]
            with m.If(beat):
                for k in range(_SLOTS):
                    with m.If(fetches.head == k):
                        m.d.sync += fetched_fault[k].eq(low_fault | (r_resp != 0))

        # --- AV store memory, responses, invalidations, page-request counters ---------------
        st = dut.store
        m.d.comb += [st.aw.ready.eq(any_seq(1)), st.w.ready.eq(any_seq(1))]
        aw_n, w_n, b_n = (Signal(3, name=n) for n in ("store_aw", "store_w", "store_b"))
        st_aw_fire, st_w_fire = st.aw.valid & st.aw.ready, st.w.valid & st.w.ready
        b_valid = any_seq(1) & (aw_n != b_n) & (w_n != b_n)
        b_resp = any_seq(2)
        m.d.comb += [st.b.valid.eq(b_valid), st.b.p.resp.eq(b_resp)]
        m.d.sync += [aw_n.eq(aw_n + st_aw_fire), w_n.eq(w_n + st_w_fire), b_n.eq(b_n + b_valid)]
        m.d.comb += [dut.resp.ready.eq(any_seq(1)), dut.inval.ready.eq(any_seq(1))]
        resp_fire = dut.resp.valid & dut.resp.ready
        inval_fire = dut.inval.valid & dut.inval.ready
        accepted = Signal(PD_COUNT_WIDTH, name="pr_accepted")
        retired = Signal(PD_COUNT_WIDTH, name="pr_retired")
        m.d.sync += [accepted.eq(accepted + any_seq(1)),
                     retired.eq(retired + (any_seq(1) & (retired != accepted)))]
        m.d.comb += [dut.pr_accepted.eq(accepted), dut.pr_retired.eq(retired)]

        # --- what the block does, seen from outside -------------------------------------------
        prev = {}
        for name, sig in (("cqh", cqh), ("on", on), ("resp_valid", dut.resp.valid),
                          ("aw_valid", st.aw.valid), ("inval_valid", dut.inval.valid),
                          ("retired", retired), ("restart", restart)):
            prev[name] = Signal.like(sig, name=f"{name}_prev")
            m.d.sync += prev[name].eq(sig)
        advance = prev["on"] & on & (cqh != prev["cqh"])
        check(m, ~advance | (cqh == ((prev["cqh"] + 1) & mask)))
        passed = CommandHeader(cmds[prev["cqh"]])
        current = CommandHeader(cmds[cqh])

        def is_(hdr, opcode, func3):
            return (hdr.opcode == opcode) & (hdr.func3 == func3)

        def is_fence(hdr):
            return is_(hdr, Opcode.IOFENCE_C, FUNC3_IOFENCE_C) | is_(hdr, Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD)

        store_start = st.aw.valid & ~prev["aw_valid"]
        # The block's status pulses are registered: fence_w_ip comes in the cycle
        # cqh moves past its fence, a cqmf for a faulting store the cycle after
        # its response.
        assert STATUS_SET_DELAY == 1
        wsi_pulse = regs.set_status.fence_w_ip
        fence_done_passed = advance & is_fence(passed)          # cqh moved past a fence
        fence_done_here = store_start | wsi_pulse  # a fence at (AV store) or just past (fence_w_ip) cqh

        if chk == "fence_c_after_prgr":
            # A fence completes only after every earlier ATS.PRGR response was accepted.
            # Counters as of this cycle: cqh moving past a command is seen one
            # cycle after the pop, so the pass seen now is counted now.
            prgr_passed = Signal(8, name="prgr_passed")
            resp_done = Signal(8, name="responses_accepted")
            prgr_now = Signal(8, name="prgr_passed_now")
            m.d.comb += prgr_now.eq(prgr_passed + (advance & is_(passed, Opcode.ATS, FUNC3_PRGR)))
            m.d.sync += [prgr_passed.eq(prgr_now), resp_done.eq(resp_done + resp_fire)]
            check(m, ~fence_done_passed | (resp_done == prgr_now))
            check(m, ~fence_done_here | ((resp_done + resp_fire) == prgr_now))
            check(m, resp_done + resp_fire <= prgr_now)
            cover(m, fence_done_passed & (prgr_passed == 2) & ~prev["resp_valid"])
            cover(m, store_start & (prgr_now != 0))

        if chk == "fence_pd_drain":
            # An IOFENCE.PD completes only after every page request accepted before
            # the fence was reached has retired.
            arrival = Signal(PD_COUNT_WIDTH, name="accepted_at_arrival")
            with m.If((cqh != prev["cqh"]) | (on & ~prev["on"])):
                m.d.sync += arrival.eq(accepted)
            pd_passed = advance & is_(passed, Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD)
            # fence_w_ip is for the fence cqh has just passed (which pd_passed
            # checks too); an AV store is the fence at cqh.
            pd_here = ((store_start & is_(current, Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD))
                       | (wsi_pulse & is_(passed, Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD)))
            check(m, ~pd_passed | modular_ge(prev["retired"], arrival, PD_COUNT_WIDTH))
            check(m, ~pd_here | modular_ge(retired, arrival, PD_COUNT_WIDTH))
            cover(m, pd_passed & (arrival == 2))
            cover(m, pd_here & store_start & (arrival != 0))

        if chk == "cq_error_stop":
            # cmd_ill / cqmf stop the queue with cqh on the culprit; nothing after it
            # executes while the bit is set.
            st_fault = Signal(name="store_faulted")
            m.d.sync += st_fault.eq(b_valid & (b_resp != 0))
            with m.If(regs.set_status.cmd_ill):
                check(m, ~command_legal(cmds[cqh], _ADDR_WIDTH))
            with m.If(regs.set_status.cqmf):
                check(m, fetched_fault.bit_select(cqh, 1) | st_fault)
            stopped = status["cqmf"] | status["cmd_ill"]
            stopped_prev = Signal(name="stopped_prev")
            m.d.sync += stopped_prev.eq(stopped)
            held = stopped & stopped_prev & ~prev["restart"]
            with m.If(held):
                check(m, cqh == prev["cqh"])
                check(m, ~(dut.resp.valid & ~prev["resp_valid"]))
                check(m, ~(dut.inval.valid & ~prev["inval_valid"]))
                check(m, ~store_start)
                check(m, ~wsi_pulse)
            cover(m, held & status["cmd_ill"] & (cqh != 0))
            cover(m, regs.set_status.cqmf & st_fault)
            cover(m, regs.set_status.cqmf & ~st_fault)

        if chk == "inval_before_fence":
            # A fence after IODIR.INVAL_DDT completes only after the invalidation
            # handshake, and no later command executes before it.
            inval_passed = Signal(8, name="inval_passed")
            inval_now = Signal(8, name="inval_passed_now")
            inval_done = Signal(8, name="inval_done")
            m.d.comb += inval_now.eq(inval_passed + (advance & is_(passed, Opcode.IODIR, FUNC3_INVAL_DDT)))
            m.d.sync += [inval_passed.eq(inval_now), inval_done.eq(inval_done + inval_fire)]
            check(m, ~fence_done_passed | (inval_done == inval_now))
            check(m, ~fence_done_here | ((inval_done + inval_fire) == inval_now))
            pending = inval_done != inval_passed
            check(m, ~(pending & advance & ~is_(passed, Opcode.IODIR, FUNC3_INVAL_DDT)))
            check(m, ~(pending & dut.resp.valid & ~prev["resp_valid"]))
            cover(m, fence_done_passed & (inval_passed == 1) & is_(passed, Opcode.IOFENCE_C, FUNC3_IOFENCE_C))
            cover(m, pending & (dut.inval.all == 0) & ~dut.inval.ready)
        return m


def make_block(**overrides):
    """The command queue with the proof parameters."""
    params = dict(addr_width=_ADDR_WIDTH, data_width=64, prefetch_depth=3)
    params.update(overrides)
    return CommandQueue(**params)

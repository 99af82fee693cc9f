"""Command queue: fetch and execute (DESIGN.md §2 "Queue rules"/"Timing", §3 "Commands").

Software writes 16-byte commands into the ring at ``cqb`` and moves ``cqt``; this
block fetches them over its memory read port (prefetching several ahead), executes
them strictly in order, and moves ``cqh``.  Four commands exist (DESIGN §3):
``ATS.PRGR`` (one PRG response), ``IODIR.INVAL_DDT`` (device-context invalidation
handshake), ``IOFENCE.C`` and this design's ``IOFENCE.PD`` (page-request drain).
Everything else is ``cmd_ill``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, Value, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    COMMAND_BYTES, DDT_INDEX_BITS, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD,
    FUNC3_PRGR, PAGE_SHIFT, CommandHeader, InvalDdtCmd, IofenceCmd, Opcode, PrgResponse,
    PrgrCmd, reserved_field_names,
)
from rtl.bus import (
    PD_COUNT_WIDTH, InvalidateSignature, MemReadSignature, MemWriteSignature,
    QueueRegsSignature, queue_status_names,
)

__all__ = ["CommandQueue", "FETCH_TO_EXECUTE", "RESPONSE_BUFFER"]

#: Cycles from the last beat of a command's fetch to its execution when nothing
#: is ahead of it (the prefetch buffer's registered read).
FETCH_TO_EXECUTE = 2
#: ATS.PRGR responses the command queue holds for ``resp`` (handed to the
#: response path: a disable does not take them back).
RESPONSE_BUFFER = 2

_COMMAND_BITS = COMMAND_BYTES * 8
_INDEX_BITS = 16            # 2**16 entries at most (LOG2SZ-1 is clamped to 15)


#: A prefetched command as buffered: its bits, whether its fetch faulted, and
#: its decode (done as it arrives, so execution reads flags from registers).
_BufferedCommand = data.StructLayout({
    "bits": _COMMAND_BITS, "fault": 1, "legal": 1, "prgr": 1, "inval": 1, "fence_pd": 1,
})


def _any_reserved(view, layout):
    bits = [Value.cast(view[name]).any() for name in reserved_field_names(layout)]
    return Cat(*bits).any()


class CommandQueue(wiring.Component):
    """Command-queue fetcher and executor.

    Parameters
    ----------
    addr_width : int
        Memory address width (above 12; DESIGN default 56).
    data_width : int
        Memory data width, 64 or 128: a command is one 2-beat burst at 64 bits,
        one beat at 128.
    prefetch_depth : int or None
        Commands fetched ahead of execution (in flight plus buffered), at least 1.
        The default (8 at 64 bits, 16 at 128) sustains the memory-port bound of
        DESIGN §1 (0.5 or 1.0 commands per clock) against a memory answering within
        8 cycles.

    Members
    -------
    regs : Out(QueueRegsSignature(("cqmf", "cmd_ill", "fence_w_ip")))
        cqen, cqb, cqt and the status bits in; cqh (``hw_index``), cqon (``on``) and
        the status set pulses out.  ``notify`` is always 0 (there is no
        command timeout, so cqcsr.cmd_to is never set and not on this port).
    fetch : Out(MemReadSignature)
        Command fetches.  ``r.ready`` is always high.
    store : Out(MemWriteSignature)
        The IOFENCE AV store: one beat of size 2 with the strobe and data of the
        4-byte lane the address selects.  ``b.ready`` is always high.
    resp : Out(stream.Signature(PrgResponse))
        ``ATS.PRGR`` responses.  Meant to feed :class:`ResponseArbiter`, which holds
        nothing, so acceptance here is acceptance on ``prg_resp``.
    inval : Out(InvalidateSignature)
        ``IODIR.INVAL_DDT``: ``valid`` with ``all`` (DV=0) or ``did`` (DV=1) is held
        until ``ready``.
    pr_accepted, pr_retired : In(PD_COUNT_WIDTH)
        Page-request counters of the page-request path, for ``IOFENCE.PD``.

    Contract
    --------
    Queue control
        * cqen 0→1 (seen while cqon=0): cqh := 0 and cqon=1 from the next cycle.
        * cqen 1→0: nothing new is fetched or executed; cqon stays 1 until every
          fetch and AV store issued has had its response (and a pending
          invalidation handshake has finished), then drops.  A fence waiting when
          cqen drops is abandoned: no AV store, no fence_w_ip, cqh stays on it.  An
          AV store already issued is seen through (the fence then completes).  A PRG
          response already offered on ``resp`` stays offered until accepted.
        * While cqmf or cmd_ill is set (or in the cycle this block pulses one)
          nothing is fetched or executed; every prefetched command is dropped and
          fetching restarts at cqh once software clears the bit, so a command
          rewritten in memory while the queue was stopped is seen as rewritten.
    Fetch
        Commands at cqh..cqt-1 are fetched in order, up to ``prefetch_depth`` ahead
        of execution.  A fetch answered with any non-OKAY beat marks that command
        faulty; the fault is reported (cqmf, cqh on it) only when execution reaches
        it.  Nothing is fetched at or beyond cqt.
    Execution (in order, one command at a time; an ``ATS.PRGR`` per cycle)
        * Illegal (unknown opcode/func3, any reserved bit set, INVAL_DDT with a
          nonzero PID or with DV=1 and a DID wider than 7 bits, IOFENCE whose ADDR*4
          does not fit in ``addr_width`` bits): pulse cmd_ill, cqh stays on it.
        * ``ATS.PRGR``: put its response on ``resp`` (DID = DSEG<<16 | RID with DSV=1,
          else RID; PID as written when PV=1, else 0; PRGI; code as written); cqh
          moves past it in the same cycle.
        * ``IODIR.INVAL_DDT``: cqh moves past it; ``inval`` is held until ready;
          nothing later executes before that.
        * ``IOFENCE.C``: waits until every earlier command has completed (every earlier
          response accepted on ``resp``); then, with AV=1, stores DATA to ADDR*4 and
          waits for the write response (non-OKAY: cqmf, cqh stays on it, no
          fence_w_ip); then WSI=1 pulses fence_w_ip and cqh moves past it.
        * ``IOFENCE.PD``: as IOFENCE.C, and in the cycle every earlier command has
          completed it snapshots ``pr_accepted``; its AV store, fence_w_ip and cqh
          advance wait until ``pr_retired`` reaches the snapshot (modular compare, seen
          one cycle later).
    Latency (measured in ``tests/rtl_cq/figures.py``)
        The cycle in which the last earlier response is accepted on ``resp`` counts as
        the cycle every earlier command has completed (``IOFENCE.PD`` takes
        ``pr_accepted`` as of then); the fence acts in the next cycle.  A fence
        without AV moves cqh two cycles after that acceptance; with AV its store is
        offered two cycles after it and cqh moves in the cycle after the write
        response.  A fence with no earlier work is executed two cycles
        after the last beat of its fetch (the buffer's registered read), and cqh
        moves one cycle later without AV.
    """

    def __init__(self, *, addr_width=56, data_width=64, prefetch_depth=None):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool) or addr_width <= PAGE_SHIFT:
            raise TypeError(f"addr_width must be an integer above {PAGE_SHIFT}, not {addr_width!r}")
        if addr_width > 64:
            raise TypeError(f"addr_width must be at most 64, not {addr_width!r}")
        if data_width not in (64, 128) or isinstance(data_width, bool):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        if prefetch_depth is None:
            prefetch_depth = 8 if data_width == 64 else 16
        if not isinstance(prefetch_depth, int) or isinstance(prefetch_depth, bool) or prefetch_depth < 1:
            raise TypeError(f"prefetch_depth must be a positive integer, not {prefetch_depth!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.prefetch_depth = prefetch_depth
        super().__init__({
            "regs": Out(QueueRegsSignature(queue_status_names("cq"))),
            "fetch": Out(MemReadSignature(addr_width=addr_width, data_width=data_width)),
            "store": Out(MemWriteSignature(addr_width=addr_width, data_width=data_width)),
            "resp": Out(stream.Signature(PrgResponse)),
            "inval": Out(InvalidateSignature()),
            "pr_accepted": In(PD_COUNT_WIDTH),
            "pr_retired": In(PD_COUNT_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        beats = _COMMAND_BITS // self.data_width          # 2 at 64 bits, 1 at 128
        bytes_per_beat = self.data_width // 8
        depth = self.prefetch_depth

        # --- queue control ---------------------------------------------------------
        on = Signal()
        head = Signal(_INDEX_BITS)             # cqh
        fetch_idx = Signal(_INDEX_BITS)        # next command to fetch
        failed = Signal()                      # an error pulse was raised last cycle
        # Registered: cqb (and so the size) changes only while the queue is off.
        mask = Signal(_INDEX_BITS, init=1)
        m.d.sync += mask.eq(((Const(2, _INDEX_BITS + 1) << regs.log2sz_1) - 1)[:_INDEX_BITS])
        stopped = regs.status.cqmf | regs.status.cmd_ill | failed
        run = Signal()
        m.d.comb += [
            run.eq(regs.enable & on & ~stopped),
            regs.hw_index.eq(head),
            regs.on.eq(on),
        ]
        # notify stays 0: the CQ publishes no records.
        head_next = (head + 1)[:_INDEX_BITS] & mask
        m.d.sync += failed.eq(0)

        # --- prefetch buffer ----------------------------------------------------------
        # One entry per command (:data:`_BufferedCommand`), in a FIFO with a
        # synchronous read port (block RAM where the device has it) and a
        # registered output.  Cleared whenever the queue does not run, so
        # execution never sees a stale command.
        flush = ~run
        m.submodules.buffer = buffer = ResetInserter(flush)(
            fifo.SyncFIFOBuffered(width=_BufferedCommand.size, depth=max(depth, 2)))

        count_shape = unsigned((2 * depth).bit_length())
        outstanding = Signal(count_shape)      # bursts issued, last beat not yet seen
        discard = Signal(count_shape)          # of those, how many to throw away

        # The read command is a register: once offered it stays until accepted.
        ar = self.fetch.ar
        ar_valid = Signal()
        m.d.comb += ar.valid.eq(ar_valid)
        issue = Signal()
        can_take_ar = ~ar_valid | ar.ready
        # Slots taken: bursts outstanding plus commands buffered, kept as one
        # counter so the room test needs no adder.
        reserved = Signal(count_shape)
        room = reserved < depth
        m.d.comb += issue.eq(run & can_take_ar & room & (fetch_idx != regs.sw_index[:_INDEX_BITS]))
        base = Cat(Const(0, PAGE_SHIFT), regs.base_ppn)
        fetch_addr = (base | (fetch_idx << (COMMAND_BYTES.bit_length() - 1)))[:self.addr_width]
        # The address register follows fetch_idx whenever it may change, so
        # its load enable is the AR handshake, not the issue decision.
        with m.If(can_take_ar):
            m.d.sync += ar.payload.addr.eq(fetch_addr)
        with m.If(issue):
            m.d.sync += [
                ar_valid.eq(1),
                ar.payload.len.eq(beats - 1),
                ar.payload.size.eq(bytes_per_beat.bit_length() - 1),
                fetch_idx.eq((fetch_idx + 1)[:_INDEX_BITS] & mask),
            ]
        with m.Elif(ar.ready):
            m.d.sync += ar_valid.eq(0)

        # Responses: assemble the beats of one command.
        r = self.fetch.r
        m.d.comb += r.ready.eq(1)
        burst_done = Signal()
        word = Signal(_COMMAND_BITS)
        word_fault = Signal()
        beat_fault = r.payload.resp != 0
        if beats == 1:
            m.d.comb += [
                burst_done.eq(r.valid),
                word.eq(r.payload.data),
                word_fault.eq(beat_fault),
            ]
        else:
            beat = Signal(range(beats))
            low = Signal(self.data_width * (beats - 1))
            low_fault = Signal()
            with m.If(r.valid):
                with m.If(beat == beats - 1):
                    m.d.sync += [beat.eq(0), low_fault.eq(0)]
                    m.d.comb += burst_done.eq(1)
                with m.Else():
                    m.d.sync += [
                        beat.eq(beat + 1),
                        low.eq(Cat(low[self.data_width:], r.payload.data)),
                        low_fault.eq(low_fault | beat_fault),
                    ]
            m.d.comb += [
                word.eq(Cat(low, r.payload.data)),
                word_fault.eq(low_fault | beat_fault),
            ]

        # --- decode of each command as it arrives -----------------------------------------
        hdr = CommandHeader(word)
        arriving_fence = IofenceCmd(word)
        arriving_inval = InvalDdtCmd(word)
        arriving_prgr = PrgrCmd(word)
        is_fence_c = (hdr.opcode == Opcode.IOFENCE_C) & (hdr.func3 == FUNC3_IOFENCE_C)
        is_fence_pd = (hdr.opcode == Opcode.IOFENCE_PD) & (hdr.func3 == FUNC3_IOFENCE_PD)
        is_inval = (hdr.opcode == Opcode.IODIR) & (hdr.func3 == FUNC3_INVAL_DDT)
        is_prgr = (hdr.opcode == Opcode.ATS) & (hdr.func3 == FUNC3_PRGR)
        # ADDR is ADDR[63:2]: the store address ADDR*4 must fit in addr_width bits.
        fence_addr_wide = arriving_fence.addr[self.addr_width - 2:].any()
        fence_ok = ~_any_reserved(arriving_fence, IofenceCmd) & ~fence_addr_wide
        inval_ok = (~_any_reserved(arriving_inval, InvalDdtCmd) & (arriving_inval.pid == 0)
                    & ~(arriving_inval.dv & arriving_inval.did[DDT_INDEX_BITS:].any()))
        prgr_ok = ~_any_reserved(arriving_prgr, PrgrCmd)
        arriving = Signal(_BufferedCommand)
        m.d.comb += [
            arriving.bits.eq(word),
            arriving.fault.eq(word_fault),
            arriving.legal.eq(((is_fence_c | is_fence_pd) & fence_ok)
                              | (is_inval & inval_ok) | (is_prgr & prgr_ok)),
            arriving.prgr.eq(is_prgr),
            arriving.inval.eq(is_inval),
            arriving.fence_pd.eq(is_fence_pd),
        ]

        outstanding_next = Signal(count_shape)
        m.d.comb += outstanding_next.eq(outstanding + issue - burst_done)
        m.d.sync += outstanding.eq(outstanding_next)
        with m.If(burst_done):
            with m.If(discard != 0):
                m.d.sync += discard.eq(discard - 1)
            with m.Else():
                m.d.comb += buffer.w_en.eq(1)
        m.d.comb += buffer.w_data.eq(arriving)
        popped = buffer.r_en & buffer.r_rdy
        with m.If(flush):
            # Everything not yet arrived belongs to the dropped prefetch; the
            # buffer is emptied.
            m.d.sync += [discard.eq(outstanding_next), fetch_idx.eq(head),
                         reserved.eq(outstanding_next)]
        with m.Else():
            # One 1-bit step per signal (keeps every operand at the counter's width).
            after_issue, after_drop = Signal(count_shape), Signal(count_shape)
            m.d.comb += [after_issue.eq(reserved + issue),
                         after_drop.eq(after_issue - (burst_done & (discard != 0)))]
            m.d.sync += reserved.eq(after_drop - popped)
        with m.If(regs.enable & ~on):
            m.d.sync += [head.eq(0), fetch_idx.eq(0)]

        # --- the command at the head of the buffer ----------------------------------------
        head_cmd = data.View(_BufferedCommand, buffer.r_data)
        cmd_fault = head_cmd.fault
        have_cmd = buffer.r_rdy
        legal = head_cmd.legal
        is_prgr = head_cmd.prgr
        is_inval = head_cmd.inval
        is_fence_pd = head_cmd.fence_pd
        fence_cmd = IofenceCmd(head_cmd.bits)
        inval_cmd = InvalDdtCmd(head_cmd.bits)
        prgr_cmd = PrgrCmd(head_cmd.bits)

        # --- response buffer ------------------------------------------------------------
        # Two entries: an ATS.PRGR is taken while one is free, so taking it never
        # waits on ``resp.ready`` in the same cycle (one response per clock while
        # ``resp`` accepts one per clock).
        resp = self.resp
        m.submodules.resp_buffer = resp_buffer = fifo.SyncFIFO(width=PrgResponse.as_shape().size,
                                                                depth=RESPONSE_BUFFER)
        m.d.comb += [
            resp.valid.eq(resp_buffer.r_rdy),
            resp.payload.eq(resp_buffer.r_data),
            resp_buffer.r_en.eq(resp.ready),
        ]
        prgr_resp = Signal(PrgResponse)
        m.d.comb += [
            prgr_resp.did.eq(Cat(prgr_cmd.rid, Mux(prgr_cmd.dsv, prgr_cmd.dseg, 0))),
            prgr_resp.pv.eq(prgr_cmd.pv),
            prgr_resp.pid.eq(Mux(prgr_cmd.pv, prgr_cmd.pid, 0)),
            prgr_resp.prgi.eq(prgr_cmd.prgi),
            prgr_resp.code.eq(prgr_cmd.code),
            resp_buffer.w_data.eq(prgr_resp),
        ]
        # Every earlier command has completed once the buffer is empty: the
        # fence acts one cycle after the last earlier response is accepted.
        # That acceptance cycle is still the one IOFENCE.PD counts from, so it
        # uses the page-request count of the cycle before when it was held up
        # by a response accepted then.
        responses_done = ~resp_buffer.r_rdy
        accepted_last = Signal()
        accepted_before = Signal(PD_COUNT_WIDTH)
        fence_held = Signal()
        m.d.sync += [accepted_last.eq(resp.valid & resp.ready),
                     accepted_before.eq(self.pr_accepted), fence_held.eq(0)]

        # --- fence state -----------------------------------------------------------------
        fence_av = Signal()
        fence_wsi = Signal()
        fence_data = Signal(32)
        fence_addr = Signal(self.addr_width)
        pd_snapshot = Signal(PD_COUNT_WIDTH)
        # Registered (the subtraction is a carry chain): it lags pr_retired by
        # a cycle, and is forced low in the first cycle of each drain wait
        # (when it still compares against the previous snapshot).
        pd_reached = Signal()
        m.d.sync += pd_reached.eq(~(self.pr_retired - pd_snapshot)[PD_COUNT_WIDTH - 1])

        aw, w, b = self.store.aw, self.store.w, self.store.b
        aw_valid, w_valid = Signal(), Signal()
        m.d.comb += [aw.valid.eq(aw_valid), w.valid.eq(w_valid), b.ready.eq(1)]
        with m.If(aw.ready):
            m.d.sync += aw_valid.eq(0)
        with m.If(w.ready):
            m.d.sync += w_valid.eq(0)
        lane_bits = (bytes_per_beat // 4 - 1).bit_length()   # which 4-byte lane
        lane = fence_addr[2:2 + lane_bits]
        m.d.comb += [
            aw.payload.addr.eq(fence_addr),
            aw.payload.len.eq(0),
            aw.payload.size.eq(2),
            w.payload.data.eq(Cat(*(Mux(lane == i, fence_data, 0)
                                    for i in range(bytes_per_beat // 4)))),
            w.payload.strb.eq(Const(0xF, bytes_per_beat) << (lane * 4)),
            w.payload.last.eq(1),
        ]

        inval = self.inval
        inval_valid = Signal()
        m.d.comb += inval.valid.eq(inval_valid)

        def pop_and_advance():
            m.d.comb += buffer.r_en.eq(1)
            m.d.sync += head.eq(head_next)

        def complete_fence():
            pop_and_advance()
            m.d.comb += regs.set_status.fence_w_ip.eq(fence_wsi)

        def start_store():
            m.d.sync += [aw_valid.eq(1), w_valid.eq(1)]

        def fail(bit):
            m.d.comb += getattr(regs.set_status, bit).eq(1)
            m.d.sync += failed.eq(1)

        with m.FSM(name="exec") as exec_fsm:
            with m.State("Exec"):
                # The fence registers follow the command at the head while
                # executing, so their load enable is the state, not the decode.
                m.d.sync += [
                    fence_av.eq(fence_cmd.av),
                    fence_wsi.eq(fence_cmd.wsi),
                    fence_data.eq(fence_cmd.data),
                    fence_addr.eq(Cat(Const(0, 2), fence_cmd.addr)[:self.addr_width]),
                ]
                with m.If(run & have_cmd):
                    with m.If(cmd_fault):
                        fail("cqmf")
                    with m.Elif(~legal):
                        fail("cmd_ill")
                    with m.Elif(is_prgr):
                        with m.If(resp_buffer.w_rdy):
                            pop_and_advance()
                            m.d.comb += resp_buffer.w_en.eq(1)
                    with m.Elif(is_inval):
                        pop_and_advance()
                        m.d.sync += [
                            inval_valid.eq(1),
                            inval.all.eq(~inval_cmd.dv),
                            inval.did.eq(inval_cmd.did[:DDT_INDEX_BITS]),
                        ]
                        m.next = "Inval"
                    with m.Else():   # IOFENCE.C or IOFENCE.PD
                        # Every earlier command has completed once the last ATS.PRGR
                        # response (the only earlier work that can still be pending)
                        # has been accepted.
                        with m.If(~responses_done):
                            m.d.sync += fence_held.eq(1)
                        with m.Else():
                            with m.If(is_fence_pd):
                                m.d.sync += [
                                    pd_snapshot.eq(Mux(fence_held & accepted_last,
                                                       accepted_before, self.pr_accepted)),
                                    pd_reached.eq(0),
                                ]
                                m.next = "DrainWait"
                            with m.Elif(fence_cmd.av):
                                start_store()
                                m.next = "Store"
                            with m.Else():
                                m.d.comb += regs.set_status.fence_w_ip.eq(fence_cmd.wsi)
                                pop_and_advance()

            with m.State("DrainWait"):
                with m.If(~run):
                    m.next = "Exec"                     # abandoned
                with m.Elif(pd_reached):
                    with m.If(fence_av):
                        start_store()
                        m.next = "Store"
                    with m.Else():
                        complete_fence()
                        m.next = "Exec"

            with m.State("Store"):
                with m.If(b.valid):
                    with m.If(b.payload.resp != 0):
                        fail("cqmf")
                    with m.Else():
                        complete_fence()
                    m.next = "Exec"

            with m.State("Inval"):
                with m.If(inval.ready):
                    m.d.sync += inval_valid.eq(0)
                    m.next = "Exec"

        # cqon: up at once on enable; down only once nothing issued is outstanding.
        busy = (outstanding != 0) | exec_fsm.ongoing("Store") | exec_fsm.ongoing("Inval")
        with m.If(regs.enable):
            m.d.sync += on.eq(1)
        with m.Elif(~busy):
            m.d.sync += on.eq(0)

        return m

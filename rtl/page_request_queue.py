# The page-request path (DESIGN.md §4 "Page-request disposition", §2 queue rules
# and timing, §3 "PQ record"; RISC-V IOMMU specification v1.0 §3.3
# "Page-Request-Queue").

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    PAGE_SHIFT, PQ_RECORD_BYTES, Cause, PageRequest, PqRecord, PrgResponse, ResponseCode,
    is_stop_marker,
)

from .bus import (
    PD_COUNT_WIDTH, DdtpSignature, InvalidateSignature, MemReadSignature, MemWriteSignature,
    QueueRegsSignature, queue_mask, queue_status_names,
)
from .context_lookup import ContextLookup, ContextStatus
from .fault_queue import FaultReport
from .fifo import CountedFifo
from .ingress import Ingress

__all__ = ["PageRequestQueue"]

#: What a write's B response decided: discarded (it faulted, or an earlier
#: record's write did), and whether its fault is the one that sets pqmf.
_WriteFate = data.StructLayout({"bad": 1, "owner": 1})

#: A retired request on its way out: answered on ``resp`` or only counted.
_OutItem = data.StructLayout({"respond": 1, "resp": PrgResponse})

#: One request waiting to retire, in arrival order, with its response as
#: decided (the PASID rule applied to PV; the PASID itself is zeroed without
#: PV as the request retires, off the decision's path).  A request decided "write" keeps Response
#: Failure: the answer if its record write faults; else it is not answered.
#: (Assembled at the decision; stored as the response and the kind below.)
_RetireEntry = data.StructLayout({
    "is_write": 1,      # decided "write": waits for its B response
    "respond": 1,       # L=1 and not a Stop Marker: answered unless its record is published
    "resp": PrgResponse,
})
#: The part of it that decides the retirement (kept in a RAM of its own), and
#: its PV bit (so the head's PASID rule needs no read of the response RAM).
_RetireKind = data.StructLayout({"is_write": 1, "respond": 1, "pv": 1})


class PageRequestQueue(wiring.Component):
    """Takes page requests, decides each one per DESIGN §4, writes PQ records,
    reports faults and sends auto-responses.

    Parameters
    ----------
    addr_width, data_width : int
        Of the memory client ports (data 64 or 128).
    ingress_depth : int
        Depth of the ingress FIFO (:class:`rtl.ingress.Ingress`).
    dc_cache_entries : int
        Entries of the device-context cache (:class:`rtl.context_lookup.ContextLookup`).
    max_in_flight : int
        Requests decided but not yet retired (records in flight included).

    Members
    -------
    page_req : In(stream.Signature(PageRequest))
        ``ready`` is high exactly when the ingress FIFO has room.
    resp : Out(stream.Signature(PrgResponse))
        Auto-responses, in arrival order of their requests.
    ctx_mem : Out(MemReadSignature)
        Device-context reads.
    rec_mem : Out(MemWriteSignature)
        PQ record writes, one burst of 16 bytes each, several in flight.
    fault : Out(stream.Signature(FaultReport))
        Faults for the FQ writer (§4 FQ column), in arrival order.
    regs : Out(QueueRegsSignature(("pqmf", "pqof")))
    ddtp : In(DdtpSignature)
    inval : In(InvalidateSignature)
    pr_accepted : Out(PD_COUNT_WIDTH)
        Requests accepted on ``page_req`` in earlier cycles (mod 2**width).
    pr_retired : Out(PD_COUNT_WIDTH)
        Requests retired (mod 2**width): a request retires, in arrival order,
        when its record has been written and ``pqt`` published past it, or it
        was dropped, or its auto-response was accepted on ``resp``.  It is
        counted the cycle after it leaves the two-entry output stage (after
        its response is accepted, or a cycle or more after it was disposed of).

    Contract
    --------
    * A request is decided when it leaves the context lookup, by the first
      matching row of §4: context rows (Off, Bare, too wide, load fault, V=0,
      misconfigured, EN_ATS/EN_PRI) report a fault on ``fault`` (not the
      EN_* row when DTF=1) and answer Response Failure or Invalid Request;
      then "pqen=0, pqon=0 or pqmf" answers Response Failure; then "pqof or
      full" answers Success (a full queue sets pqof; pqof already set is left
      alone, so software's clear is not undone by requests that find room);
      else the record is written.  The
      full test counts records issued but not yet acknowledged.  Only requests
      with L=1 that are not Stop Markers are answered; the others are dropped.
    * The auto-response carries PV and the PASID when the request had one and
      the code is Response Failure or the context has PRPR=1 (PRPR counts as 0
      without a usable context).
    * Records are written at ``pqb.PPN << 12 | index * 16``; ``pqt`` moves past
      a record only when its write has been acknowledged OKAY and every earlier
      request has retired, and ``notify`` pulses in the next cycle.
    * A record write answered other than OKAY sets ``pqmf`` when it reaches the
      head of the retire order (the pulse leaves a cycle later; ``pqt`` stays
      before it); it and every record
      issued after it are discarded (answered Response Failure when they have
      L=1), and no record is issued from the fault until ``pqmf`` is cleared.
      The next record goes to ``pqt``.
    * ``pqon`` becomes 1 the cycle after ``pqen`` is seen 1 (``pqt`` is zeroed
      then); after ``pqen`` drops it stays 1 until every record decided
      "write" has retired (written and published, or discarded).
    * A request leaves the lookup only in a cycle where the retire order,
      the fault register and the record FIFOs all have room, whatever
      its decision needs (the handshake is a register of this block).  The
      room is registered: a retirement makes room for a decision two cycles
      later, and no decision is taken in the cycle after ``pqon`` rises or
      after the restart from a fault.  The queue rows see pqen, pqmf and
      pqof a cycle after the register file shows them (this block's own sets
      at once), so software's enable or clear reaches a decision a cycle later.
    * ``fault`` leaves from a register: a report is offered the cycle after
      its decision, and the next decision waits until the cycle after it is
      accepted (reports leave at most one every two cycles); ``fault.valid``
      and the payload are flip-flops; ``fault.ready`` moves only that register.
    * ``resp.valid`` is a register and ``resp``'s payload one gate from
      registers (the two-entry output stage, a ring); the AXI write addresses and beats leave from registers
      too (the record FIFOs' outputs; the address is ``pqb`` OR the index).
    * Back-pressure on ``resp`` holds the retire order and so, once
      ``max_in_flight`` requests wait, the whole path and ``page_req``.
    """

    def __init__(self, *, addr_width=56, data_width=64, ingress_depth=16, dc_cache_entries=8,
                 max_in_flight=16):
        if not isinstance(max_in_flight, int) or max_in_flight < 2 or max_in_flight & (max_in_flight - 1):
            raise TypeError(f"max_in_flight must be a power of 2 of at least 2, not {max_in_flight!r}")
        if data_width not in (64, 128):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        self.addr_width, self.data_width = addr_width, data_width
        self.ingress_depth, self.dc_cache_entries = ingress_depth, dc_cache_entries
        self.max_in_flight = max_in_flight
        mem = dict(addr_width=addr_width, data_width=data_width)
        super().__init__({
            "page_req": In(stream.Signature(PageRequest)),
            "resp": Out(stream.Signature(PrgResponse)),
            "ctx_mem": Out(MemReadSignature(**mem)),
            "rec_mem": Out(MemWriteSignature(**mem)),
            "fault": Out(stream.Signature(FaultReport)),
            "regs": Out(QueueRegsSignature(queue_status_names("pq"))),
            "ddtp": In(DdtpSignature()),
            "inval": In(InvalidateSignature()),
            "pr_accepted": Out(PD_COUNT_WIDTH),
            "pr_retired": Out(PD_COUNT_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        depth = self.max_in_flight
        ptr_bits = (depth - 1).bit_length()
        beats = PQ_RECORD_BYTES * 8 // self.data_width

        # --- ingress FIFO and context lookup ---------------------------------------
        m.submodules.ingress = ingress = Ingress(depth=self.ingress_depth)
        m.submodules.lookup = lookup = ContextLookup(
            addr_width=self.addr_width, data_width=self.data_width,
            cache_entries=self.dc_cache_entries)
        wiring.connect(m, wiring.flipped(self.page_req), ingress.i)
        wiring.connect(m, ingress.o, lookup.i)
        wiring.connect(m, wiring.flipped(self.ctx_mem), lookup.mem)
        wiring.connect(m, wiring.flipped(self.ddtp), lookup.ddtp)
        wiring.connect(m, wiring.flipped(self.inval), lookup.inval)
        m.d.comb += self.pr_accepted.eq(ingress.accepted)

        # --- queue state ----------------------------------------------------------
        on = Signal(name="pqon")
        pqt = Signal(16, name="pqt")                 # published tail
        issue_idx = Signal(16, name="pq_issue_index")  # where the next record goes
        # (issue_idx + 1) & mask, kept in a register so the full test is one
        # comparison of two registers.
        issue_next = Signal(16, name="pq_issue_next", init=1)
        issue_next2 = Signal(16, name="pq_issue_next2", init=2)   # (issue_idx + 2) & mask
        # Registered: the size changes only with pqb, which is written only
        # while the queue is off (DESIGN §2), cycles before it can be enabled.
        mask = Signal(17, name="pq_mask", init=1)
        mf_pending = Signal(name="pq_mf_pending")    # a record write faulted, pqmf not yet set
        writes_in_rob = Signal(ptr_bits + 1, name="pq_writes_in_flight")
        m.d.sync += mask.eq(queue_mask(regs.log2sz_1))
        m.d.comb += [regs.hw_index.eq(pqt), regs.on.eq(on)]

        # --- retire order (a ring of decided requests) -------------------------------
        # A small RAM (distributed RAM where the device has it): written at the
        # tail when a request is decided, read asynchronously at the head.  An
        # entry is read only while occupied, so it needs no reset.  The bits
        # that decide the retirement (and PV) are in a RAM of their own, and the
        # head's are also in a register (``rob_head_kind``): loaded from the
        # entry after the head as the head retires (read at an index of its
        # own), or from the decision when it makes the head.
        m.submodules.rob = rob = Memory(shape=PrgResponse, depth=depth, init=[])
        rob_w = rob.write_port()
        rob_r = rob.read_port(domain="comb")
        m.submodules.rob_kind = rob_kind = Memory(shape=_RetireKind, depth=depth, init=[])
        kind_w = rob_kind.write_port()
        kind_r = rob_kind.read_port(domain="comb")
        head_ptr = Signal(max(ptr_bits, 1), name="rob_head")
        head_after = Signal(max(ptr_bits, 1), name="rob_head_after", init=1 % depth)  # head index + 1
        h_kind = Signal(_RetireKind, name="rob_head_kind")
        tail_ptr = Signal(max(ptr_bits, 1), name="rob_tail")
        bad = Signal(depth, name="rob_bad")           # write faulted or discarded
        w_pending = Signal(depth, name="rob_w_pending")  # write issued, B not yet seen
        # A write's fate is fixed when its B response arrives (``bad`` only
        # marks writes still waiting for theirs).  B responses come back in
        # issue order, and writes retire in that order too, so the head
        # (when it is a write) has its B response exactly when some B
        # response has arrived for a write not yet retired: a count
        # (``rob_b_ahead``) says whether the head is final, instead of a
        # selection of per-entry flags; and the fates wait in a FIFO in that
        # order, whose first one (``rob_head_fate``, a register) is the head
        # write's.
        m.submodules.rob_fate = fate = Memory(shape=_WriteFate, depth=depth, init=[])
        fate_w = fate.write_port()
        fate_r = fate.read_port(domain="comb")
        fate_in = Signal(max(ptr_bits, 1), name="rob_fate_in")
        fate_after = Signal(max(ptr_bits, 1), name="rob_fate_after", init=1 % depth)  # first + 1
        h_fate = Signal(_WriteFate, name="rob_head_fate")
        # (a thermometer code: bit i says more than i; no adder, no comparison)
        b_ahead = Signal(depth, name="rob_b_ahead")
        b_ahead_nz = b_ahead[0]
        # Whether the ring has room for a decision is registered (in
        # pq_can_decide): it has when fewer than depth-1 entries are taken, or
        # depth-1 and no decision is taken now (a retirement is seen a cycle
        # later).  The occupancy is a thermometer code (bit i: more than i
        # entries taken), so that each test is one bit or two.
        used = Signal(depth, name="rob_used")
        occupied = used[0]
        tail_idx = tail_ptr[:ptr_bits]
        # The tail index, also one-hot: each entry's allocation is one gate.
        tail_onehot = Signal(depth, name="rob_tail_onehot", init=1)
        head_idx = head_ptr[:ptr_bits]

        # --- record issue FIFOs ---------------------------------------------------------
        # They never hold more than ``depth`` records (each one's request holds
        # an entry of the retire order until its B response), so the room in
        # the retire order is room in them too; at least 8 entries so that
        # they map to block RAM, not flip-flops, even with a small ``depth``.
        # The AW FIFO holds record indices: pqb does not change while a record
        # is in flight (pqon stays 1 until every one has retired, and a pqb
        # write is ignored while pqon is 1).
        issue_depth = max(depth, 8)
        m.submodules.aw_fifo = aw_fifo = CountedFifo(width=16, depth=issue_depth)
        m.submodules.w_fifo = w_fifo = CountedFifo(width=PqRecord.as_shape().size, depth=issue_depth)
        m.submodules.b_order = b_order = CountedFifo(width=max(ptr_bits, 1), depth=depth)

        # --- decision (DESIGN §4, top to bottom) ------------------------------------------
        lk = lookup.o
        req = lk.p.req
        status = lk.p.status
        dc = lk.p.dc
        respond = req.l & ~is_stop_marker(req.pv, req.l, req.r, req.w)
        code = Signal(4, name="decide_code")
        cause = Signal(12, name="decide_cause")
        report = Signal(name="decide_report")
        write = Signal(name="decide_write")
        set_of = Signal(name="decide_set_pqof")
        prpr = lk.p.usable & dc.prpr    # PRPR=1 needs EN_PRI=1 in a well-formed context
        # The full test is a register: this cycle's comparison of the next
        # index (issue_next, or issue_next2 if a record is issued now) with
        # pqh.  So it compares with the pqh of the cycle before (a pqh write
        # takes effect on the queue in the cycle its write response is
        # offered).  After the index jumps (enable, or the restart after a
        # fault) decisions wait one cycle (pq_can_decide).
        full = Signal(name="pq_full")
        issued_last = Signal(name="pq_issued_last")

        def equal(a, b, name):
            # A balanced tree: 2-bit comparisons, then two groups of four,
            # each a net of its own (left alone, synthesis makes a chain).
            groups = []
            for g in range(2):
                pairs = []
                for k in range(4):
                    lo = 8 * g + 2 * k
                    pair = Signal(name=f"{name}_{g}_{k}", attrs={"keep": 1})
                    m.d.comb += pair.eq(a[lo:lo + 2] == b[lo:lo + 2])
                    pairs.append(pair)
                group = Signal(name=f"{name}_{g}", attrs={"keep": 1})
                m.d.comb += group.eq(Cat(*pairs).all())
                groups.append(group)
            return groups[0] & groups[1]
        # pqof is set through a register (a pulse one cycle after the decision);
        # of_pending stands for it until the register file shows it.
        of_pending = Signal(name="pq_of_pending")
        # The decision's terms are kept as nets of their own (one gate each
        # from registers), so that the decision and its enables are two gates
        # deep rather than one long chain of gates.
        keep = {"keep": 1}
        # "pqen=0, pqon=0 or pqmf" does not match, and "pqof" does not match:
        # registers, set a cycle ahead from the register file's bits as they
        # are now together with the sets this block is sending (so software's
        # pqen, or its clear of pqmf or pqof, reaches the decision a cycle
        # after the register file shows it).
        queue_ok = Signal(name="decide_queue_ok")
        no_of = Signal(name="decide_no_pqof")
        room = Signal(name="decide_room", attrs=keep)           # "pqof or full" does not match
        success = Signal(name="decide_success")         # the "pqof or full" row matched
        m.d.comb += [room.eq(no_of & ~full),
                     write.eq(lk.p.usable & queue_ok & room),
                     success.eq(lk.p.usable & queue_ok & ~room),
                     # Only a full queue sets pqof: a request that merely finds
                     # pqof already set must not undo software's clear in the
                     # same cycle (DESIGN §2: a set wins), or a request storm
                     # would keep the PQ stopped after the driver made room.
                     set_of.eq(success & full)]

        # The context rows were decided by the lookup (code, cause, report);
        # only the queue rows are decided here.  A usable context's code is
        # Response Failure: the answer of "pqen=0, pqon=0 or pqmf", and of a
        # record write that faults (a written record is not answered).
        m.d.comb += [code.eq(lk.p.code), cause.eq(lk.p.cause), report.eq(lk.p.report)]

        final_code = Mux(success, ResponseCode.SUCCESS, code)
        # The PASID goes back when the request had one and the code is
        # Response Failure or the context has PRPR=1 (DESIGN §4).
        with_pasid = req.pv & ((final_code == ResponseCode.RESPONSE_FAILURE) | prpr)
        entry = Signal(_RetireEntry, name="decide_entry")
        m.d.comb += [
            entry.is_write.eq(write),
            entry.respond.eq(respond),
            entry.resp.did.eq(req.did),
            entry.resp.pv.eq(with_pasid),
            entry.resp.pid.eq(req.pid),     # zeroed without PV as it retires
            entry.resp.prgi.eq(req.prgi),
            entry.resp.code.eq(final_code),
        ]
        entry_kind = Signal(_RetireKind, name="decide_kind")
        m.d.comb += entry_kind.eq(Cat(entry.is_write, entry.respond, entry.resp.pv))

        # The decision is taken only when every place it may go has room
        # (the retire order, and so the record FIFOs; the fault register), so
        # the handshake with the lookup depends on registers only and not on
        # the decision itself.
        # One register: the room of the retire order and of the fault
        # register, and a fresh full test.  ``fault.ready`` moves only the
        # fault register.
        can_decide = Signal(name="pq_can_decide")
        # can_decide and the queue rows' registers together, in a register of
        # its own: a record is issued in one gate from flip-flops.
        write_go = Signal(name="pq_write_go")
        m.d.comb += lk.ready.eq(can_decide)
        decide = Signal(name="pq_decide", attrs=keep)
        write_alloc = Signal(name="pq_write_alloc", attrs=keep)     # a record is issued now
        m.d.comb += [decide.eq(lk.valid & can_decide),
                     write_alloc.eq(lk.valid & lk.p.usable & write_go & ~full)]

        # --- fault reports: one register on ``fault`` ----------------------------------------
        # The register loads the lookup's report whenever it is free (its
        # enable is a flip-flop; the payload has no reset, it matters only
        # while ``fault.valid``); a decision that reports takes it.  A
        # decision is taken only while it is free in that cycle (registered,
        # in pq_can_decide), so after a report the next decision waits until
        # it has been offered and accepted: at most one report every two cycles.
        f_occ = Signal(name="pq_fault_taken")
        f_entry = Signal(FaultReport, name="pq_fault", reset_less=True)
        report_now = Signal(FaultReport, name="decide_fault")
        m.d.comb += [report_now.did.eq(req.did), report_now.pv.eq(req.pv),
                     report_now.pid.eq(req.pid), report_now.priv.eq(req.priv),
                     report_now.cause.eq(cause)]
        with m.If(~f_occ):
            m.d.sync += f_entry.eq(report_now)
        f_push = Signal(name="pq_fault_push")
        f_pop = Signal(name="pq_fault_pop")
        m.d.comb += [
            self.fault.p.eq(f_entry),
            self.fault.valid.eq(f_occ),
            f_push.eq(decide & report),
            f_pop.eq(f_occ & self.fault.ready),
        ]
        f_occ_next = Signal(name="pq_fault_taken_next")
        m.d.comb += f_occ_next.eq((f_occ & ~f_pop) | f_push)
        m.d.sync += f_occ.eq(f_occ_next)
        record = Signal(PqRecord, name="decide_record")
        m.d.comb += [
            record.pid.eq(Mux(req.pv, req.pid, 0)),
            record.pv.eq(req.pv),
            record.priv.eq(req.pv & req.priv),
            record.exec.eq(req.pv & req.exec),
            record.did.eq(req.did),
            record.r.eq(req.r), record.w.eq(req.w), record.l.eq(req.l),
            record.prgi.eq(req.prgi),
            record.addr.eq(req.addr),
        ]

        # FIFO data is driven whatever the decision (only the write enables
        # depend on it), so no data bit is gated by the decision logic.
        m.d.comb += [
            aw_fifo.w_data.eq(issue_idx),
            w_fifo.w_data.eq(record),
            b_order.w_data.eq(tail_idx),
        ]
        m.d.sync += full.eq(Mux(write_alloc, equal(issue_next2, regs.sw_index, "pq_full_if_issued"),
                                equal(issue_next, regs.sw_index, "pq_full_if_held")))
        # The retire order's slot at the tail is free whenever a decision may
        # be taken: it is written then, whatever the decision.
        m.d.comb += [rob_w.en.eq(can_decide), kind_w.en.eq(can_decide)]
        with m.If(decide):
            m.d.sync += [tail_ptr.eq(tail_ptr + 1),
                         tail_onehot.eq(Cat(tail_onehot[-1], tail_onehot[:-1]))]
            m.d.sync += of_pending.eq(set_of)
        with m.If(write_alloc):
            m.d.comb += [aw_fifo.w_en.eq(1), w_fifo.w_en.eq(1), b_order.w_en.eq(1)]
            m.d.sync += [issue_idx.eq(issue_next), issue_next.eq(issue_next2),
                         issue_next2.eq((issue_next2 + 1) & mask)]

        with m.If(~decide):
            m.d.sync += of_pending.eq(0)
        m.d.comb += regs.set_status.pqof.eq(of_pending)

        # --- record writes ------------------------------------------------------------------
        beat = Signal(range(max(beats, 2)), name="pq_beat")
        m.d.comb += [
            self.rec_mem.aw.valid.eq(aw_fifo.r_rdy),
            self.rec_mem.aw.p.addr.eq(
                ((regs.base_ppn << PAGE_SHIFT) | (aw_fifo.r_data * PQ_RECORD_BYTES))[:self.addr_width]),
            self.rec_mem.aw.p.len.eq(beats - 1),
            self.rec_mem.aw.p.size.eq((self.data_width // 8).bit_length() - 1),
            aw_fifo.r_en.eq(self.rec_mem.aw.valid & self.rec_mem.aw.ready),
            self.rec_mem.w.valid.eq(w_fifo.r_rdy),
            w_fifo.r_en.eq(self.rec_mem.w.valid & self.rec_mem.w.ready & self.rec_mem.w.p.last),
            self.rec_mem.b.ready.eq(1),
        ]
        w_data = Signal(self.data_width, name="pq_w_data")
        with m.Switch(beat):
            for k in range(beats):
                with m.Case(k):
                    m.d.comb += w_data.eq(w_fifo.r_data[k * self.data_width:(k + 1) * self.data_width])
        # One assignment of the whole beat: a constant-only assignment of the
        # strobe would be printed as an `always @*` that Verilator never runs.
        m.d.comb += self.rec_mem.w.p.eq(Cat(w_data, Const(-1, self.data_width // 8), beat == beats - 1))
        with m.If(self.rec_mem.w.valid & self.rec_mem.w.ready):
            m.d.sync += beat.eq(Mux(self.rec_mem.w.p.last, 0, beat + 1))

        # --- per-entry flags: allocation, B responses, fault discards -------------------------
        # B responses are registered (with the entry they belong to) before
        # they touch the per-entry flags: one cycle of latency on publishing,
        # no path from the AXI port through the flags.  Whether the entry
        # was already discarded is registered with it (the flag of the
        # entry the B FIFO offers, and a fault arriving now discards it),
        # and so is whether its fault is the first (``pq_first_fault``, a
        # register: it stops the decisions one gate from flip-flops).
        b_fire = Signal(name="pq_b_fire")
        b_idx = Signal.like(b_order.r_data, name="pq_b_index", reset_less=True)
        b_fault = Signal(name="pq_b_fault", reset_less=True)
        b_bad = Signal(name="pq_b_bad", reset_less=True)
        first_fault = Signal(name="pq_first_fault")    # b_fire & b_fault & ~b_bad
        b_bad_next = Signal(name="pq_b_bad_next")
        m.d.comb += [b_order.r_en.eq(self.rec_mem.b.valid),
                     b_bad_next.eq(bad.bit_select(b_order.r_data, 1) | first_fault)]
        m.d.sync += [b_fire.eq(self.rec_mem.b.valid), b_idx.eq(b_order.r_data),
                     b_fault.eq(self.rec_mem.b.p.resp != 0), b_bad.eq(b_bad_next),
                     first_fault.eq(self.rec_mem.b.valid & (self.rec_mem.b.p.resp != 0) & ~b_bad_next)]
        new_bad = Signal(depth, name="rob_bad_next")
        m.d.comb += new_bad.eq(bad)
        with m.If(first_fault):
            # The faulting record and every record issued after it are discarded.
            m.d.comb += new_bad.eq(bad | w_pending)
            m.d.sync += mf_pending.eq(1)
        for k in range(depth):
            # The flags of the slot at the tail are written whenever a
            # decision may be taken (the slot is free then, and a decision
            # takes it): their enable is one gate of flip-flops.
            with m.If(can_decide & tail_onehot[k]):
                m.d.sync += w_pending[k].eq(write)
                # A record issued in the cycle an earlier one's fault arrives is
                # discarded with it.
                m.d.comb += new_bad[k].eq(first_fault)
            with m.If(b_fire & (b_idx == k)):
                m.d.sync += w_pending[k].eq(0)
        m.d.sync += bad.eq(new_bad)
        new_fate = Signal(_WriteFate, name="pq_b_fate")
        m.d.comb += [new_fate.bad.eq(b_bad | b_fault), new_fate.owner.eq(b_fault & ~b_bad),
                     fate_w.addr.eq(fate_in), fate_w.en.eq(b_fire), fate_w.data.eq(new_fate)]
        with m.If(b_fire):
            m.d.sync += fate_in.eq(fate_in + 1)

        # --- retire, in arrival order -------------------------------------------------------
        m.d.comb += [rob_w.addr.eq(tail_idx), rob_w.data.eq(entry.resp), rob_r.addr.eq(head_idx),
                     kind_w.addr.eq(tail_idx),
                     kind_w.data.eq(entry_kind),
                     kind_r.addr.eq(head_after), fate_r.addr.eq(fate_after)]
        head = h_kind
        head_resp = rob_r.data
        # A request leaves the retire order once its disposition is final (its
        # record's write acknowledged, if it has one) into a two-entry output
        # stage, which answers it on ``resp`` (or not) and only then counts it
        # in ``pr_retired``.  So the retire order never waits on ``resp.ready``
        # in the same cycle, and the count still follows arrival order.  The
        # stage is a ring of two registers, each loading the head's item
        # whenever it is free (its enable is one gate of flip-flops); ``resp``
        # leaves from the one at the read pointer (one gate from flip-flops).
        # Its state is kept relative to the read pointer: the first entry
        # (to answer: ``resp.valid``; to drop: ``pq_out_drop``), the second
        # (taken only when both are), so that ``resp.ready`` is one gate
        # from each register it moves.  An item goes to the first entry
        # when the stage is empty, else to the second.
        out_entry = [Signal(_OutItem, name=f"pq_out{k}", reset_less=True) for k in range(2)]
        out_rp = Signal(name="pq_out_rp")
        out_full = Signal(name="pq_out_full")              # both taken
        out_drop = Signal(name="pq_out_drop")              # the first taken, not to be answered
        out_answer2 = Signal(name="pq_out_answer2")        # the second taken, to be answered
        out_drop2 = Signal(name="pq_out_drop2")            # the second taken, not to be answered
        retire = Signal(name="pq_retire")
        publish = Signal(name="pq_publish")
        # The head's state (each use is one gate of registers).
        h_final = ~head.is_write | b_ahead_nz         # its disposition is final
        h_kept = head.is_write & ~h_fate.bad          # its record is published (once final)
        h_ready = occupied & ~out_full                # there is a head and room for it
        m.d.comb += retire.eq(h_ready & h_final)
        retired_write = Signal(name="pq_retired_write")
        m.d.comb += retired_write.eq(h_ready & head.is_write & b_ahead_nz)
        m.d.comb += publish.eq(retired_write & ~h_fate.bad)

        def count(thermometer, up, down):
            # One more or one fewer (the shift's direction depends on ``up``
            # alone; ``down`` only enables it).
            more = Cat(Const(1, 1), thermometer[:-1])
            fewer = Cat(thermometer[1:], Const(0, 1))
            with m.If(up ^ down):
                m.d.sync += thermometer.eq(Mux(up, more, fewer))
        count(used, decide, retire)
        # B responses for writes not yet retired.
        count(b_ahead, b_fire, retired_write)

        out_item = Signal(_OutItem, name="pq_out_item")
        m.d.comb += [
            # Not answered when its record is published (written, not discarded).
            out_item.respond.eq(head.respond & ~h_kept),
            out_item.resp.did.eq(head_resp.did),
            # PV from the head's own register: the PASID rule is one gate
            # after the response RAM's read.
            out_item.resp.pv.eq(head.pv),
            out_item.resp.pid.eq(Mux(head.pv, head_resp.pid, 0)),
            out_item.resp.prgi.eq(head_resp.prgi),
            out_item.resp.code.eq(head_resp.code),
        ]
        out_empty = ~self.resp.valid & ~out_drop
        for k in range(2):
            with m.If(Mux(out_rp == k, out_empty, ~out_full)):
                m.d.sync += out_entry[k].eq(out_item)
        # The first entry leaves when it is not to be answered or ``resp``
        # takes it.
        out_pop = Signal(name="pq_out_pop")
        m.d.comb += [
            self.resp.p.eq(Mux(out_rp, out_entry[1].resp.as_value(), out_entry[0].resp.as_value())),
            out_pop.eq(out_drop | (self.resp.valid & self.resp.ready)),
        ]
        # What the head pushes into the stage if it retires now: an item to
        # answer, or one to drop (each one gate of registers).
        push_answer = Signal(name="pq_out_push_answer", attrs={"keep": 1})
        push_drop = Signal(name="pq_out_push_drop", attrs={"keep": 1})
        m.d.comb += [push_answer.eq(retire & out_item.respond),
                     push_drop.eq(retire & ~out_item.respond)]
        # The first entry next: after a pop, the second (the one pushed now,
        # unless both were taken); without one, the same (the one pushed now,
        # if the stage is empty).  The second: kept while both are taken and
        # none leaves, loaded by a push while one is taken and none leaves.
        # Written out with what the flags imply (the second's flags imply
        # ``out_full``, a push implies not full, ``out_drop`` implies a pop,
        # and a first entry that stays is one to answer), so that each is a
        # gate or two of ``resp.ready`` and the push.
        stays = self.resp.valid & ~self.resp.ready      # the first is taken and does not leave
        m.d.sync += [
            out_rp.eq(out_rp ^ out_pop),
            # pop ? answer2 | push_answer : valid | (empty & push_answer)
            self.resp.valid.eq(push_answer | (out_pop & out_answer2) | stays),
            # pop ? drop2 | push_drop : empty & push_drop
            out_drop.eq((push_drop & (out_pop | ~self.resp.valid)) | (out_pop & out_drop2)),
            out_answer2.eq(stays & (out_answer2 | push_answer)),
            out_drop2.eq(stays & (out_drop2 | push_drop)),
            out_full.eq(stays & (out_full | retire)),
        ]
        # Counted a cycle after it leaves (the count's enable is then a flip-flop).
        out_popped = Signal(name="pq_out_popped")
        m.d.sync += out_popped.eq(out_pop)
        with m.If(out_popped):
            m.d.sync += self.pr_retired.eq(self.pr_retired + 1)

        with m.If(retire):
            m.d.sync += [head_ptr.eq(head_ptr + 1), head_after.eq(head_after + 1),
                         # the entry after the head, or the one decided now
                         h_kind.eq(Mux(used[1], kind_r.data, entry_kind))]
        with m.Elif(~occupied):
            m.d.sync += h_kind.eq(entry_kind)
        with m.If(retired_write):
            m.d.sync += [fate_after.eq(fate_after + 1),
                         # the next fate in the FIFO, or the one arriving now
                         h_fate.eq(Mux(b_ahead[1], fate_r.data, new_fate))]
        with m.Elif(~b_ahead_nz):
            m.d.sync += h_fate.eq(new_fate)
        # notify and the pqmf pulse leave through registers: pip is set the
        # cycle after pqt moves, and pqmf the cycle after the faulting record
        # retires (mf_pending holds the decisions back until then).
        notify = Signal(name="pq_notify")
        m.d.sync += notify.eq(publish)
        m.d.comb += regs.notify.eq(notify)
        with m.If(publish):
            m.d.sync += pqt.eq((pqt + 1) & mask)
        # The next record goes to pqt: moved there the cycle the pqmf pulse
        # leaves (pqmf then holds every decision back, and pqt cannot move,
        # since every record issued after the faulting one is discarded).
        restart = Signal(name="pq_restart")
        m.d.sync += restart.eq(retired_write & h_fate.owner)
        m.d.comb += regs.set_status.pqmf.eq(restart)
        # No decision in the cycle after a restart or an enable: the full test
        # of that cycle compares an old index.
        # Written as the terms without ``decide`` (a net that reaches every
        # enable of the decision) and those a decision now adds, which it
        # then selects: one gate after it.
        can_if_held = Signal(name="pq_can_decide_if_held", attrs=keep)
        can_taken_ok = Signal(name="pq_can_decide_taken_ok", attrs=keep)
        m.d.comb += [
            can_if_held.eq(~used[depth - 1] & ~restart & ~(~on & regs.enable)
                           & ~(f_occ & ~self.fault.ready)),
            # (the ring's and the fault register's room with a decision now)
            can_taken_ok.eq(~used[depth - 2] & ~report),
        ]
        m.d.sync += can_decide.eq(can_if_held & (can_taken_ok | ~decide))
        with m.If(restart):
            m.d.sync += [issue_idx.eq(pqt), issue_next.eq((pqt + 1) & mask),
                         issue_next2.eq((pqt + 2) & mask), mf_pending.eq(0)]

        # The count of writes in the retire order follows a cycle late, from
        # registered allocations and retirements.
        m.d.sync += issued_last.eq(write_alloc)
        retired_write_last = Signal(name="pq_retired_write_last")
        m.d.sync += retired_write_last.eq(retired_write)
        m.d.sync += writes_in_rob.eq(writes_in_rob + issued_last - retired_write_last)

        # --- on/off (DESIGN §2 "Timing") -------------------------------------------------------
        with m.If(~on & regs.enable):
            m.d.sync += [on.eq(1), pqt.eq(0), issue_idx.eq(0), issue_next.eq(1),
                         issue_next2.eq(2 & mask)]
        # No write is allocated while pqen is 0 (the decision needs it), so
        # the count (with the allocation it has not seen yet) says whether one
        # is outstanding.
        turn_off = on & ~regs.enable & ~queue_ok & (writes_in_rob == 0) & ~issued_last
        with m.If(turn_off):
            m.d.sync += on.eq(0)
        # The queue rows' registers (see decide_queue_ok): pqmf and pqof as
        # they will be after this block's own sets, mf_pending and of_pending
        # as they will be.
        mf_pending_next = ~restart & (mf_pending | first_fault)
        of_pending_next = decide & set_of
        # (pqon is 1 next cycle whenever pqen is)
        queue_ok_next = regs.enable & ~regs.status.pqmf & ~restart & ~mf_pending_next
        no_of_next = ~regs.status.pqof & ~of_pending & ~of_pending_next
        # (of_pending_next with a decision now: success & full)
        go_if_held = Signal(name="pq_write_go_if_held", attrs=keep)
        go_taken_ok = Signal(name="pq_write_go_taken_ok", attrs=keep)
        m.d.comb += [
            # can_if_held, queue_ok_next and no_of_next without a decision, all flip-flops
            go_if_held.eq(~used[depth - 1] & ~restart & ~(~on & regs.enable)
                          & ~(f_occ & ~self.fault.ready)
                          & regs.enable & ~regs.status.pqmf & ~mf_pending & ~first_fault
                          & ~regs.status.pqof & ~of_pending),
            go_taken_ok.eq(~used[depth - 2] & ~report & ~(lk.p.usable & queue_ok & full)),
        ]
        m.d.sync += [queue_ok.eq(queue_ok_next), no_of.eq(no_of_next),
                     write_go.eq(go_if_held & (go_taken_ok | ~decide))]
        return m

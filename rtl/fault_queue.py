# The fault-queue writer (DESIGN.md §2 queue rules, §3 "FQ record"; RISC-V IOMMU
# specification v1.0 §3.2 "Fault/Event-Queue").

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    FQ_RECORD_BYTES, IOTVAL_PAGE_REQUEST, PAGE_SHIFT, TTYP_PAGE_REQUEST, FqRecord,
)

from .bus import MemWriteSignature, QueueRegsSignature, queue_mask, queue_status_names
from .fifo import CountedFifo

__all__ = ["FaultReport", "FaultQueue"]

#: A fault to record: the request's identity and the cause (DESIGN §4 FQ column).
FaultReport = data.StructLayout({"did": 24, "pv": 1, "pid": 20, "priv": 1, "cause": 12})


class FaultQueue(wiring.Component):
    """Writes FQ records for the faults the page-request path reports.

    Parameters
    ----------
    addr_width, data_width : int
        Of the memory write client.
    depth : int
        Depth of the report FIFO ahead of the writer (default 8: a FIFO of 8
        maps to block RAM on iCE40 and distributed RAM on ECP5, where 4 would
        take flip-flops); at least 3.

    Members
    -------
    i : In(stream.Signature(FaultReport))
    mem : Out(MemWriteSignature)
        One 32-byte burst per record, at ``fqb.PPN << 12 | fqt * 32``.
    regs : Out(QueueRegsSignature(("fqmf", "fqof")))

    Contract
    --------
    * ``fqon`` becomes 1 the cycle after ``fqen`` is seen 1 (``fqt`` is zeroed
      then); after ``fqen`` drops it stays 1 until the record write in flight
      (if any) has had its response.
    * A report taken while the queue is off, disabled, or has ``fqmf`` or
      ``fqof`` set is dropped.  If the queue is full (fqt + 1 == fqh) the report
      is dropped and ``fqof`` is set.  Otherwise the record is written (TTYP 9,
      iotval 0x04; PID and PRIV are 0 when PV is 0) and, once its write is
      acknowledged OKAY, ``fqt`` moves past it and ``notify`` pulses; a write
      answered otherwise sets ``fqmf`` and ``fqt`` stays (in the cycle after
      the response).
    * One record is in flight at a time.  A report taken on ``i`` enters the
      report FIFO in the cycle after; ``i.ready`` is a flip-flop that stays
      high while the FIFO holds at most ``depth - 3`` reports after this
      cycle (so at least ``depth - 2`` reports wait for the writer before
      ``i.ready`` drops).  A report is judged (dropped, fqof, or written) on
      the queue state of one cycle and acted on in the next.
    """

    def __init__(self, *, addr_width=56, data_width=64, depth=8):
        if not isinstance(depth, int) or depth < 3:
            raise TypeError(f"depth must be an integer of at least 3, not {depth!r}")
        self.addr_width, self.data_width, self.depth = addr_width, data_width, depth
        super().__init__({
            "i": In(stream.Signature(FaultReport)),
            "mem": Out(MemWriteSignature(addr_width=addr_width, data_width=data_width)),
            "regs": Out(QueueRegsSignature(queue_status_names("fq"))),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        beats = FQ_RECORD_BYTES * 8 // self.data_width
        m.submodules.reports = reports = CountedFifo(width=FaultReport.size, depth=self.depth)
        # A report taken on ``i`` is held one cycle in an input register and
        # written into the FIFO in the next, so the sender's handshake reaches
        # only that register (its data loads every cycle; its contents do not
        # matter while it is empty).  ``i.ready`` is a flip-flop: a
        # conservative room flag worked out from the FIFO's occupancy
        # (``held``, counted here from flip-flops) as if a report were taken
        # in every cycle, so the FIFO always has room for the input register.
        staged = Signal(name="fq_in_valid")
        staged_report = Signal(FaultReport.size, name="fq_in_report")
        room = Signal(name="fq_in_room", init=1)
        held = Signal(range(self.depth + 1), name="fq_held")
        held_next = Signal(range(self.depth + 1), name="fq_held_next")
        m.d.comb += [
            self.i.ready.eq(room),
            reports.w_data.eq(staged_report), reports.w_en.eq(staged),
            held_next.eq(held + staged - reports.r_en),
        ]
        m.d.sync += [
            staged.eq(self.i.valid & room), staged_report.eq(self.i.payload),
            held.eq(held_next), room.eq(held_next <= self.depth - 3),
        ]
        head = data.View(FaultReport, reports.r_data)

        fqt = Signal(16, name="fqt")
        # (fqt + 1) & mask, kept in a register: the full test is one comparison.
        fqt_next = Signal(16, name="fqt_next", init=1)
        on = Signal(name="fqon")
        # Registered: fqb (and so the size) changes only while the queue is off.
        mask = Signal(17, name="fq_mask", init=1)
        # LOG2SZ-1 comes clamped to 15: its low four bits, registered once
        # more, give each bit of the mask as one LUT4 of flip-flops.  (fqb
        # changes only while the queue is off, and the queue cannot be turned
        # on in the two cycles after.)
        log2_low = Signal(4, name="fq_log2sz_1_low")
        m.d.sync += [log2_low.eq(regs.log2sz_1[:4]),
                     mask.eq(queue_mask(log2_low))]
        m.d.comb += [regs.hw_index.eq(fqt), regs.on.eq(on)]

        record = Signal(FqRecord, name="fq_record")
        beat = Signal(range(beats + 1), name="fq_beat")
        writing = Signal(name="fq_writing")        # AW/W being sent or B awaited
        # The memory port's valids and ``last`` are flip-flops; W data is the
        # beat of the record register chosen by ``beat`` (a flip-flop), so the
        # record loads only while no write is in progress and the W handshake
        # reaches only ``beat``, ``w_last`` and ``w_valid``.
        aw_valid = Signal(name="fq_aw_valid")
        w_valid = Signal(name="fq_w_valid")
        w_last = Signal(name="fq_w_last")

        stopped = regs.status.fqmf | regs.status.fqof
        full = fqt_next == regs.sw_index[:16]

        with m.If(~on & regs.enable & ~writing):
            m.d.sync += [on.eq(1), fqt.eq(0), fqt_next.eq(1)]
        # A report is judged in one cycle (the verdict goes to registers) and
        # acted on in the next, so no path runs from the queue state through
        # the decision into the register file and the record registers.
        judged = Signal(name="fq_judged")
        verdict_drop = Signal(name="fq_verdict_drop")
        verdict_full = Signal(name="fq_verdict_full")
        with m.If(on & ~regs.enable & ~writing & ~judged):
            m.d.sync += on.eq(0)

        with m.If(~writing & reports.r_rdy & ~judged):
            m.d.sync += [judged.eq(1), verdict_drop.eq(~(on & regs.enable) | stopped),
                         verdict_full.eq(full)]
        with m.If(judged):
            m.d.comb += reports.r_en.eq(1)
            m.d.sync += judged.eq(0)
            with m.If(verdict_drop):
                pass                        # dropped: the queue cannot take records
            with m.Elif(verdict_full):
                m.d.comb += regs.set_status.fqof.eq(1)
            with m.Else():
                m.d.sync += [writing.eq(1), aw_valid.eq(1), w_valid.eq(1),
                             w_last.eq(beats == 1), beat.eq(0)]
        # The record and its address follow the report at the head while no
        # write is in progress, so their load enable is one flip-flop.
        with m.If(~writing):
            addr = (regs.base_ppn << PAGE_SHIFT) | (fqt * FQ_RECORD_BYTES)
            m.d.sync += [
                self.mem.aw.p.addr.eq(addr[:self.addr_width]),
                record.cause.eq(head.cause),
                record.pv.eq(head.pv),
                record.pid.eq(Mux(head.pv, head.pid, 0)),
                record.priv.eq(head.pv & head.priv),
                record.ttyp.eq(TTYP_PAGE_REQUEST),
                record.did.eq(head.did),
                record.iotval.eq(IOTVAL_PAGE_REQUEST),
            ]

        m.d.comb += [
            self.mem.aw.valid.eq(aw_valid),
            self.mem.aw.p.len.eq(beats - 1),
            self.mem.aw.p.size.eq((self.data_width // 8).bit_length() - 1),
            self.mem.w.valid.eq(w_valid),
            self.mem.b.ready.eq(1),
        ]
        # One assignment of the whole beat (see rtl/page_request_queue.py).
        w_data = Signal(self.data_width, name="fq_w_data")
        with m.Switch(beat):
            for k in range(beats):
                with m.Case(k):
                    m.d.comb += w_data.eq(record.as_value()[k * self.data_width:(k + 1) * self.data_width])
        m.d.comb += self.mem.w.p.eq(Cat(w_data, Const(-1, self.data_width // 8), w_last))
        # The memory port's handshakes as kept nets, so each register they
        # reach is one LUT after them.
        aw_taken = Signal(name="fq_aw_taken", attrs={"keep": 1})
        w_taken = Signal(name="fq_w_taken", attrs={"keep": 1})
        m.d.comb += [aw_taken.eq(aw_valid & self.mem.aw.ready),
                     w_taken.eq(self.mem.w.valid & self.mem.w.ready)]
        with m.If(aw_taken):
            m.d.sync += aw_valid.eq(0)
        penultimate = Signal(name="fq_w_penultimate", attrs={"keep": 1})
        m.d.comb += penultimate.eq(beat == beats - 2)
        with m.If(w_taken):
            m.d.sync += [beat.eq(beat + 1), w_last.eq(penultimate)]
            with m.If(w_last):
                m.d.sync += w_valid.eq(0)
        # The write response is registered and acted on in the next cycle,
        # so the response routing does not reach fqt and the register file.
        b_seen = Signal(name="fq_b_seen")
        b_okay = Signal(name="fq_b_okay")
        m.d.sync += [b_seen.eq(writing & self.mem.b.valid), b_okay.eq(self.mem.b.p.resp == 0)]
        with m.If(b_seen):
            m.d.sync += writing.eq(0)
            with m.If(b_okay):
                m.d.sync += [fqt.eq(fqt_next), fqt_next.eq((fqt_next + 1) & mask)]
                m.d.comb += regs.notify.eq(1)
            with m.Else():
                m.d.comb += regs.set_status.fqmf.eq(1)
        return m

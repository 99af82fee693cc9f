"""Command queue: fetch and execute (DESIGN.md §2 "Queue rules"/"Timing", §3 "Commands").

Software writes 16-byte commands into the ring at ``cqb`` and moves ``cqt``; this
block fetches them over its memory read port (prefetching several ahead), executes
them strictly in order, and moves ``cqh``.  Four commands exist (DESIGN §3):
``ATS.PRGR`` (one PRG response), ``IODIR.INVAL_DDT`` (device-context invalidation
handshake), ``IOFENCE.C`` and this design's ``IOFENCE.PD`` (page-request drain).
Everything else is ``cmd_ill``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    COMMAND_BYTES, DDT_INDEX_BITS, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD,
    FUNC3_PRGR, PAGE_SHIFT, CommandHeader, InvalDdtCmd, IofenceCmd, Opcode, PrgResponse,
    PrgrCmd, reserved_field_names,
)
from rtl.bus import (
    PD_COUNT_WIDTH, InvalidateSignature, MemReadSignature, MemWriteSignature,
    QueueRegsSignature, queue_mask, queue_status_names,
)

__all__ = ["CommandQueue", "FETCH_TO_EXECUTE", "RESPONSE_BUFFER", "STATUS_SET_DELAY"]

#: Cycles from the last beat of a command's fetch to its execution when nothing
#: is ahead of it (its decode is finished from registers, then the prefetch
#: buffer's registered read).
FETCH_TO_EXECUTE = 3
#: ATS.PRGR responses the command queue holds for ``resp`` (handed to the
#: response path: a disable does not take them back).  Two: the one-bit
#: read/write pointers and the room level's code are written for two.
RESPONSE_BUFFER = 2
#: Cycles from the event (an error found, a fence completed) to its pulse on
#: ``regs.set_status`` (the pulses leave the block as registers).
STATUS_SET_DELAY = 1

_COMMAND_BITS = COMMAND_BYTES * 8
_INDEX_BITS = 16            # 2**16 entries at most (LOG2SZ-1 is clamped to 15)


#: Room levels (``level``, two bits of registers): 0 not ready to execute,
#: 1 ready with both response entries held, 2 ready with one held, 3 ready with
#: none held.  A command at the head needs a level *above* its ``need`` code:
#: INVAL_DDT nothing (0), ATS.PRGR a free entry (1), a fence every response
#: gone (2); 3 means never (a command that stops the queue with an error).
_NEED_INVAL, _NEED_PRGR, _NEED_FENCE, _NEED_NEVER = 0, 1, 2, 3

#: A prefetched command as buffered: whether its fetch faulted, and its decode
#: (done as it arrives, so execution reads flags from registers).  Each
#: decision on the head is one LUT: a 2-bit compare of ``level`` and a need code.
_CommandFlags = data.StructLayout({
    "need_pop": 2,      # it leaves the buffer once level > need_pop
    "need_adv": 2,      # cqh moves past it then (never for a fence that waits)
    "fault": 1,         # its fetch faulted (cqmf)
    "illegal": 1,       # fetched fine, not a legal command (cmd_ill)
    "stops": 1,         # execution leaves Exec on it (INVAL_DDT, fault, illegal)
    "waits": 1,         # ... or once it acts (a legal fence, fetched fine, with AV or .PD)
    "drain": 1,         # a legal IOFENCE.PD, fetched fine
    "store": 1,         # a legal IOFENCE.C with AV, fetched fine
    "wsi_now": 1,       # a legal IOFENCE.C without AV, with WSI, fetched fine
})


def _kept(value, name):
    """``value`` through a signal that synthesis keeps, so the logic on each side
    of it is mapped on its own (a tree where area mapping would build a chain)."""
    sig = Signal.like(Value.cast(value), name=name, attrs={"keep": 1})
    return sig, sig.eq(value)


def _differ(m, a, b, name):
    """``a != b`` as a two-level tree (one LUT per two bit pairs, then an OR)."""
    pairs = []
    for k in range(0, len(a), 2):
        sig, stmt = _kept(a[k:k + 2] != b[k:k + 2], f"{name}_{k}")
        m.d.comb += stmt
        pairs.append(sig)
    sig, stmt = _kept(Cat(*pairs).any(), name)
    m.d.comb += stmt
    return sig


def _or_groups(m, terms, name):
    """``terms`` (1-bit values) in groups of four, each ORed in a kept node:
    their OR is the OR of the nodes (a single term stays as it is)."""
    if len(terms) <= 1:
        return list(terms)
    nodes = []
    for k in range(0, len(terms), 4):
        sig, stmt = _kept(Cat(*terms[k:k + 4]).any(), f"{name}_or{k // 4}")
        m.d.comb += stmt
        nodes.append(sig)
    return nodes


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
        Command fetches.  ``r.ready`` is always high; ``ar`` leaves from registers.
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
        * cqen 1→0: nothing new is fetched or executed from the next cycle on
          (see "Registered edges"); cqon stays 1 until every
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
        it.  Nothing is fetched at or beyond cqt.  ``fetch.ar.ready`` is never
        used in the fetch decision: while the read command waits for it, one more
        fetch may be decided and waits behind it (offered as soon as the first is
        accepted); both count against ``prefetch_depth`` and, if the queue stops
        meanwhile, both are still offered and their answers dropped.
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
        response.  A fence with no earlier work is executed three cycles
        after the last beat of its fetch (:data:`FETCH_TO_EXECUTE`), and cqh
        moves one cycle later without AV.
    Registered edges
        The register file's cqen, cqt and status bits are seen one cycle late: a
        command may still execute, and a fetch be issued, in the cycle cqen drops
        (cqon covers it), and work resumes a cycle after an error bit is cleared.
        The status set pulses (cmd_ill, cqmf, fence_w_ip) leave as registers,
        :data:`STATUS_SET_DELAY` cycles after their cause (fence_w_ip in the cycle
        cqh moves past the fence); ``hw_index`` and ``on`` are registers.
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
        # Every decision below is taken from registers one LUT or two deep; the
        # register file's enable and status bits are seen through ``run``, a
        # register (one cycle late), and the status set pulses leave as registers.
        on = Signal()
        head = Signal(_INDEX_BITS)                      # cqh
        head_inc = Signal(_INDEX_BITS, init=1)          # cqh + 1 (masked)
        fetch_idx = Signal(_INDEX_BITS)                 # next command to fetch
        fetch_inc = Signal(_INDEX_BITS, init=1)         # fetch_idx + 1 (masked)
        # Registered: cqb (and so the size) changes only while the queue is off.
        mask = Signal(_INDEX_BITS, init=1)
        # Each bit a compare of LOG2SZ-1 with a constant (one LUT), not a
        # shift and a subtraction.
        m.d.sync += mask.eq(queue_mask(regs.log2sz_1)[:_INDEX_BITS])
        run = Signal()              # enabled, on and not stopped, as of last cycle
        failed = Signal()           # an error was raised last cycle (pulsed this one)
        set_cqmf, set_cmd_ill, set_fence_w_ip = Signal(), Signal(), Signal()
        m.d.comb += [
            regs.hw_index.eq(head),
            regs.on.eq(on),
            regs.set_status.cqmf.eq(set_cqmf),
            regs.set_status.cmd_ill.eq(set_cmd_ill),
            regs.set_status.fence_w_ip.eq(set_fence_w_ip),
        ]
        # notify stays 0: the CQ publishes no records.
        restart = regs.enable & ~on

        # Execution state, one-hot.
        st_exec = Signal(init=1)    # executing the command at the head of the buffer
        st_drain = Signal()         # IOFENCE.PD waiting for pr_retired
        st_store = Signal()         # IOFENCE AV store issued, waiting for its response
        # Its complement as a flip-flop of its own, for the terms that meet the
        # store's answer in cqh's enable and the error pulses: synthesis cannot
        # build those on the ``st_store & b.valid`` that the state uses.
        st_store_n = Signal(init=1)
        st_inval = Signal()         # IODIR.INVAL_DDT offered on ``inval``
        # run & st_exec & "the buffer holds a command" (ready), together with
        # the response entries' room, as a two-bit level (see _NEED_INVAL):
        # every decision on the command at the head is a compare of this and
        # a need code of its flags.
        level = Signal(2)
        ready = level.any()

        # --- prefetch buffer ----------------------------------------------------------
        # Emptied whenever the queue does not run, so execution never sees a
        # stale command.
        # ~run as a flip-flop of its own (``run`` feeds the execution
        # decisions, this the buffer and the fetch bookkeeping).
        flush = Signal(init=1)
        m.submodules.buffer = buffer = _PrefetchBuffer(
            width=_COMMAND_BITS, flags=_CommandFlags.size, depth=depth)
        # ``hold`` is ~st_exec as a flip-flop of its own, so the buffer's load
        # is not built on terms it would share with the execution decisions.
        hold = Signal()
        m.d.comb += [buffer.flush.eq(flush), buffer.hold.eq(hold)]

        count_shape = unsigned((2 * depth).bit_length())
        outstanding = Signal(count_shape)      # bursts issued (a cycle late), last beat not yet seen
        discard = Signal(count_shape)          # of those, how many to throw away
        discarding = Signal()
        m.d.comb += discarding.eq(discard != 0)

        # The read command is a register: once offered it stays until accepted.
        ar = self.fetch.ar
        ar_valid = Signal()
        m.d.comb += ar.valid.eq(ar_valid)
        # ``~ar_valid`` as a flip-flop of its own for the address register's
        # enable, so the valid's and pending's next values are not built on
        # that enable (each is one LUT of ``ready``).
        ar_free = Signal(init=1)
        can_take_ar = ar_free | ar.ready
        # A fetch issued while the read command is stalled waits in
        # ``ar_pending`` (its index is ``fetch_prev``), so whether to issue is
        # decided from registers alone: the memory port's ``ready`` only moves
        # the read command along, never the fetch index or the slot counts.
        ar_pending = Signal()
        # Slots taken: bursts outstanding plus commands buffered, kept as one
        # counter that sees every change a cycle late (an issue, a pop, a
        # dropped arrival; ``issued`` counts the issue meanwhile).  Whether a
        # fetch may be issued is decided a cycle ahead, for both outcomes of
        # that cycle: ``issue_ok_after`` after an issue (fetch_inc is then
        # next), ``issue_ok_idle`` otherwise.
        reserved = Signal(count_shape)
        issued = Signal()
        # The AV store is answered: if in error, the queue stops a cycle later
        # (through ``failed``), and no fetch is issued in between.
        store_answered = Signal()
        issue_ok_after, issue_ok_idle = Signal(), Signal()
        # cqt as a register here (software's moves are seen a cycle late).
        tail = Signal(_INDEX_BITS)
        m.d.sync += tail.eq(regs.sw_index[:_INDEX_BITS])
        next_run = Signal()
        m.d.sync += [
            issue_ok_after.eq(run & ~store_answered & _differ(m, fetch_inc, tail, "after_differs")
                              & Mux(issued, reserved < depth - 2, reserved < depth - 1)),
            issue_ok_idle.eq(run & ~store_answered & _differ(m, fetch_idx, tail, "idle_differs")
                             & Mux(issued, reserved < depth - 1, reserved < depth)),
        ]
        issue, stmt = _kept(run & Mux(issued, issue_ok_after, issue_ok_idle) & ~ar_pending, "issue_now")
        m.d.comb += stmt
        m.d.sync += issued.eq(issue)
        base = Cat(Const(0, PAGE_SHIFT), regs.base_ppn)
        # The pending fetch is the one before fetch_idx.
        fetch_prev = (fetch_idx - 1)[:_INDEX_BITS] & mask
        fetch_addr = (base | (Mux(ar_pending, fetch_prev, fetch_idx)
                              << (COMMAND_BYTES.bit_length() - 1)))[:self.addr_width]
        # The address register follows the next fetch whenever it may change,
        # so its load enable is the AR handshake, not the issue decision.
        with m.If(can_take_ar):
            m.d.sync += [
                ar.payload.addr.eq(fetch_addr),
                ar.payload.len.eq(beats - 1),
                ar.payload.size.eq(bytes_per_beat.bit_length() - 1),
            ]
        # Each one LUT of the read command's ``ready`` (no reset or enable
        # made of it): a stalled command stays, a fetch issued meanwhile waits.
        stalled = ar_valid & ~ar.ready
        m.d.sync += [
            ar_valid.eq(stalled | ar_pending | issue),
            ar_free.eq(~stalled & ~ar_pending & ~issue),
            ar_pending.eq(stalled & (ar_pending | issue)),
        ]
        with m.If(flush):
            m.d.sync += [fetch_idx.eq(head), fetch_inc.eq(head_inc)]
        with m.Elif(issue):
            m.d.sync += [fetch_idx.eq(fetch_inc), fetch_inc.eq((fetch_inc + 1)[:_INDEX_BITS] & mask)]

        # Responses: assemble the beats of one command, and decode it as it
        # arrives.  The decode is split per beat: every test is an OR over bits
        # (a reserved field, a too-wide address, a nonzero PID) or a header
        # compare within the first beat, so the first beat's part is
        # registered and only the last beat's bits are decoded in its cycle.
        # Each part is an OR over command bits, kept as groups of at most 16
        # bits of the beat at hand (``bits``: for each bit of the command its
        # position in this beat, None where not in it), two LUT levels each,
        # with ``also`` (the first beat's part) as one more; the groups are
        # registered and ORed a cycle later.  A whole aligned nibble of the
        # beat is one node shared by every part.
        beat_data = self.fetch.r.payload.data
        nibble_nodes = {}

        def beat_terms(positions):
            rest, terms = set(positions), []
            for j in range(self.data_width // 4):
                nibble = set(range(4 * j, 4 * j + 4))
                if nibble <= rest:
                    if j not in nibble_nodes:
                        sig, stmt = _kept(beat_data[4 * j:4 * j + 4].any(), f"beat_or_{j}")
                        m.d.comb += stmt
                        nibble_nodes[j] = sig
                    terms.append(nibble_nodes[j])
                    rest -= nibble
            return terms + [beat_data[p] for p in sorted(rest)]

        def decode_parts(bits, name, also=None):
            def field(layout, field_name, skip=0):
                f = data.Layout.cast(layout)[field_name]
                return [b for b in bits[f.offset + skip:f.offset + f.width] if b is not None]

            def reserved(layout):
                return [b for n in reserved_field_names(layout) for b in field(layout, n)]
            terms = {
                # ADDR is ADDR[63:2]: the store address ADDR*4 must fit in addr_width bits.
                "fence_bad": reserved(IofenceCmd) + field(IofenceCmd, "addr", self.addr_width - 2),
                "inval_bad": reserved(InvalDdtCmd) + field(InvalDdtCmd, "pid"),
                "inval_dv": field(InvalDdtCmd, "dv"),
                "inval_did_wide": field(InvalDdtCmd, "did", DDT_INDEX_BITS),
                "prgr_bad": reserved(PrgrCmd),
                "fence_av": field(IofenceCmd, "av"),
                "fence_wsi": field(IofenceCmd, "wsi"),
            }
            also = also or {}
            return {k: _or_groups(m, beat_terms(v), f"{name}_{k}") + ([also[k]] if k in also else [])
                    for k, v in terms.items()}

        def decode_header(w):
            hdr = CommandHeader(w)
            return {
                "fence_c": (hdr.opcode == Opcode.IOFENCE_C) & (hdr.func3 == FUNC3_IOFENCE_C),
                "fence_pd": (hdr.opcode == Opcode.IOFENCE_PD) & (hdr.func3 == FUNC3_IOFENCE_PD),
                "inval": (hdr.opcode == Opcode.IODIR) & (hdr.func3 == FUNC3_INVAL_DDT),
                "prgr": (hdr.opcode == Opcode.ATS) & (hdr.func3 == FUNC3_PRGR),
            }

        r = self.fetch.r
        m.d.comb += r.ready.eq(1)
        burst_done = Signal()
        last_beat = Signal()        # a beat arriving now is the last of its burst
        word = Signal(_COMMAND_BITS)
        word_fault = Signal()
        beat_fault = r.payload.resp != 0
        if beats == 1:
            m.d.comb += [
                burst_done.eq(r.valid),
                last_beat.eq(1),
                word.eq(r.payload.data),
                word_fault.eq(beat_fault),
            ]
            data_bits = list(range(self.data_width))
            parts_now = {("hi", k): v for k, v in decode_parts(data_bits, "beat").items()}
            parts_now.update({("kind", k): [v] for k, v in decode_header(word).items()})
        else:
            header = data.Layout.cast(CommandHeader)
            assert all(header[n].offset + header[n].width <= self.data_width
                       for n in ("opcode", "func3")), "opcode and func3 in the first beat"
            beat = Signal(range(beats))
            low = Signal(self.data_width * (beats - 1))
            low_fault = Signal()
            first = Cat(r.payload.data, Const(0, _COMMAND_BITS - self.data_width))
            data_bits = list(range(self.data_width))
            blank = [None] * (_COMMAND_BITS - self.data_width)
            first_parts = decode_parts(data_bits + blank, "first")
            first_kind = decode_header(first)
            low_parts = {k: [Signal(name=f"low_{k}_{i}") for i in range(len(v))]
                         for k, v in first_parts.items()}
            low_kind = {k: Signal(name=f"low_is_{k}") for k in first_kind}
            m.d.comb += last_beat.eq(beat == beats - 1)
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
                    if beats == 2:
                        m.d.sync += [low_parts[k][i].eq(g) for k, v in first_parts.items()
                                     for i, g in enumerate(v)]
                        m.d.sync += [low_kind[k].eq(v) for k, v in first_kind.items()]
            assert beats == 2, "a command is at most two beats"
            # The first beat's parts, one LUT of their group registers; its
            # legality per kind worked out from registers in the last beat's
            # cycle (so the flags need only the last beat's groups).
            low_any = {k: Cat(*v).any() if v else Const(0, 1) for k, v in low_parts.items()}
            fields = {k: low_any[k] for k in ("inval_dv", "inval_did_wide", "fence_av", "fence_wsi")}
            parts_now = {("hi", k): v for k, v in decode_parts(blank + data_bits, "last", fields).items()}
            parts_now.update({("kind", k): [v] for k, v in low_kind.items()})
            parts_now.update({
                ("ok", "fence"): [(low_kind["fence_c"] | low_kind["fence_pd"]) & ~low_any["fence_bad"]],
                ("ok", "inval"): [low_kind["inval"] & ~low_any["inval_bad"]
                                  & ~(low_any["inval_dv"] & low_any["inval_did_wide"])],
                ("ok", "prgr"): [low_kind["prgr"] & ~low_any["prgr_bad"]],
            })
            m.d.comb += [
                word.eq(Cat(low, r.payload.data)),
                word_fault.eq(low_fault | beat_fault),
            ]

        # The decode is finished a cycle after the last beat, from registers:
        # the command's bits go into the buffer as they arrive, its flags a
        # cycle later (and only then does the buffer count it).
        # Each part is registered as its groups (ORs of at most 16 bits of the
        # beat, two LUT levels), ORed from registers in the next cycle.
        late_parts = {key: [Signal(name=f"late_{key[0]}_{key[1]}_{i}") for i in range(len(v))]
                      for key, v in parts_now.items()}
        late_fault = Signal()
        late_write = Signal()
        m.d.sync += [late_parts[key][i].eq(g) for key, v in parts_now.items() for i, g in enumerate(v)]
        m.d.sync += [late_fault.eq(word_fault), late_write.eq(burst_done & ~discarding & ~flush)]
        kind = {k: late_parts[("kind", k)][0] for k in ("fence_c", "fence_pd", "inval", "prgr")}
        parts = {k: Cat(*v).any() if v else Const(0, 1)
                 for (half, k), v in late_parts.items() if half == "hi"}
        if beats == 1:
            legal_fence = (kind["fence_c"] | kind["fence_pd"]) & ~parts["fence_bad"]
            legal_inval = kind["inval"] & ~parts["inval_bad"] & ~(parts["inval_dv"] & parts["inval_did_wide"])
            legal_prgr = kind["prgr"] & ~parts["prgr_bad"]
        else:
            # The first beat's legality, and the last beat's bits (every
            # part of the last beat is a "bad" OR; the fields are first-beat).
            ok = {k: late_parts[("ok", k)][0] for k in ("fence", "inval", "prgr")}
            legal_fence = ok["fence"] & ~parts["fence_bad"]
            legal_inval = ok["inval"] & ~parts["inval_bad"]
            legal_prgr = ok["prgr"] & ~parts["prgr_bad"]
        legal = legal_fence | legal_inval | legal_prgr
        arriving = Signal(_CommandFlags)
        fine = ~late_fault
        fence_waits = kind["fence_pd"] | parts["fence_av"]
        need_pop = Mux(fine & legal_inval, _NEED_INVAL,
                       Mux(fine & legal_prgr, _NEED_PRGR,
                           Mux(fine & legal_fence, _NEED_FENCE, _NEED_NEVER)))
        m.d.comb += [
            arriving.need_pop.eq(need_pop),
            arriving.need_adv.eq(Mux(fine & legal_fence & fence_waits, _NEED_NEVER, need_pop)),
            arriving.fault.eq(late_fault),
            arriving.illegal.eq(fine & ~legal),
            arriving.stops.eq(late_fault | ~legal | legal_inval),
            arriving.waits.eq(fine & legal_fence & fence_waits),
            arriving.drain.eq(fine & legal_fence & kind["fence_pd"]),
            arriving.store.eq(fine & legal_fence & ~kind["fence_pd"] & parts["fence_av"]),
            arriving.wsi_now.eq(fine & legal_fence & ~fence_waits & parts["fence_wsi"]),
        ]

        # ``outstanding_less`` is outstanding - 1, kept alongside, so what is
        # still to arrive after this cycle is a choice between two registers
        # (modulo 2**width: it is all ones while nothing is outstanding).
        outstanding_less = Signal(len(outstanding), init=-1)
        m.d.comb += [buffer.w_data.eq(word),
                     buffer.w_flags_en.eq(late_write), buffer.w_flags.eq(arriving)]

        # --- the command at the head of the buffer ----------------------------------------
        head_cmd = data.View(_CommandFlags, buffer.r_flags)
        fence_cmd = IofenceCmd(buffer.r_data)
        inval_cmd = InvalDdtCmd(buffer.r_data)
        prgr_cmd = PrgrCmd(buffer.r_data)

        # --- response buffer ------------------------------------------------------------
        # Two entries used in turn: ``resp`` is offered from the one ``resp_read``
        # names (one LUT after flip-flops); an ATS.PRGR is written into the
        # other while it is free, so taking it never waits on ``resp.ready`` in
        # the same cycle (one response per clock while ``resp`` accepts one per
        # clock), and ``resp.ready`` moves only the one-bit pointer and flags.
        resp = self.resp
        resp_valid, resp_full = Signal(), Signal()      # one or two responses held
        resp_entries = [Signal(PrgResponse, name=f"resp_entry{i}") for i in range(RESPONSE_BUFFER)]
        resp_read, resp_write = Signal(), Signal()
        resp_take = resp_valid & resp.ready
        m.d.comb += [resp.valid.eq(resp_valid),
                     resp.payload.eq(Mux(resp_read, resp_entries[1], resp_entries[0]))]
        new_resp = Signal(PrgResponse)
        m.d.comb += [
            new_resp.did.eq(Cat(prgr_cmd.rid, Mux(prgr_cmd.dsv, prgr_cmd.dseg, 0))),
            new_resp.pv.eq(prgr_cmd.pv),
            new_resp.pid.eq(Mux(prgr_cmd.pv, prgr_cmd.pid, 0)),
            new_resp.prgi.eq(prgr_cmd.prgi),
            new_resp.code.eq(prgr_cmd.code),
        ]

        # --- the execution decisions (each one LUT from registers) ------------------------
        # ``level`` > need: a compare of two 2-bit registers.
        need_pop = head_cmd.need_pop
        go_prgr = (level > _NEED_PRGR) & (need_pop == _NEED_PRGR)
        go_inval = (level > _NEED_INVAL) & (need_pop == _NEED_INVAL)
        # Every earlier command has completed once no response is held: the
        # fence acts one cycle after the last earlier response is accepted.
        go_fence = (level > _NEED_FENCE) & (need_pop == _NEED_FENCE)
        fail_mf = ready & head_cmd.fault
        fail_ill = ready & head_cmd.illegal
        # The pop (it drives the whole buffer), one LUT.
        popping, stmt_pop = _kept(level > need_pop, "popping")
        m.d.comb += [stmt_pop, buffer.pop.eq(popping)]
        # cqh moves past the head as it leaves, except past a fence that waits.
        exec_adv, stmt_adv = _kept(level > head_cmd.need_adv, "exec_adv")
        # A fence that waits is popped without loading the next head, so it
        # stays in the read registers while it waits (see ``fence_av``).
        m.d.comb += [stmt_adv, buffer.pop_load.eq(exec_adv)]

        push = go_prgr
        # The entry to write is loaded whenever it is free (its contents do
        # not matter until pushed), so its enable is registers only.
        for i, entry in enumerate(resp_entries):
            with m.If(~resp_full & (resp_write == i)):
                m.d.sync += entry.eq(new_resp)
        with m.If(push):
            m.d.sync += resp_write.eq(~resp_write)
        with m.If(resp_take):
            m.d.sync += resp_read.eq(~resp_read)
        m.d.sync += [
            resp_valid.eq(push | resp_full | (resp_valid & ~resp.ready)),
            resp_full.eq(~resp_take & (resp_full | (resp_valid & push))),
        ]

        # IOFENCE.PD takes ``pr_accepted`` as of the cycle the last earlier
        # response was accepted: while executing, the snapshot follows
        # pr_accepted as long as a response is held, and in the cycle a fence
        # acts unless it was held up (then it keeps the count of the cycle the
        # last response left).
        fence_held = Signal()
        m.d.sync += fence_held.eq(ready & (need_pop == _NEED_FENCE) & resp_valid)

        # --- fence state -----------------------------------------------------------------
        # A fence that waits (drain or AV store) leaves the buffer as it acts,
        # but the buffer's read registers keep it until execution is back in
        # Exec (the buffer loads its next head only then), so its fields are
        # read from there.
        fence_av = fence_cmd.av
        fence_wsi = fence_cmd.wsi
        fence_data = fence_cmd.data
        fence_addr = Cat(Const(0, 2), fence_cmd.addr)[:self.addr_width]
        pd_snapshot = Signal(PD_COUNT_WIDTH)
        with m.If(st_exec & (resp_valid | ~fence_held)):
            m.d.sync += pd_snapshot.eq(self.pr_accepted)
        # Registered (the subtraction is a carry chain): it lags pr_retired by
        # a cycle, and is forced low in the first cycle of each drain wait
        # (when it still compares against the previous snapshot).
        pd_reached = Signal()
        m.d.sync += pd_reached.eq(~(self.pr_retired - pd_snapshot)[PD_COUNT_WIDTH - 1] & ~go_fence)

        aw, w, b = self.store.aw, self.store.w, self.store.b
        aw_valid, w_valid = Signal(name="store_aw_valid"), Signal(name="store_w_valid")
        m.d.comb += [aw.valid.eq(aw_valid), w.valid.eq(w_valid), b.ready.eq(1)]
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

        to_drain = (level == 3) & head_cmd.drain
        to_store = (level == 3) & head_cmd.store
        drain_abandon = st_drain & ~run
        drain_done = st_drain & run & pd_reached
        # The store's answer as a net of its own (the AXI master's decode of
        # its B channel), so none of the logic below is folded into it.
        b_valid, stmt_bv = _kept(b.valid, "store_b_valid")
        m.d.comb += stmt_bv
        m.d.comb += store_answered.eq(st_store & b_valid)
        # The decision from registers as one net, the AXI master's ready
        # joins in the last LUT.
        start_store, stmt_start = _kept(to_store | (drain_done & fence_av), "start_store")
        m.d.comb += stmt_start
        m.d.sync += [aw_valid.eq(start_store | (aw_valid & ~aw.ready)),
                     w_valid.eq(start_store | (w_valid & ~w.ready))]

        inval = self.inval
        inval_valid = Signal()
        m.d.comb += inval.valid.eq(inval_valid)
        with m.If(~inval_valid):
            m.d.sync += [inval.all.eq(~inval_cmd.dv), inval.did.eq(inval_cmd.did[:DDT_INDEX_BITS])]
        with m.If(go_inval):
            m.d.sync += inval_valid.eq(1)
        with m.Elif(inval.ready):
            m.d.sync += inval_valid.eq(0)

        # cqh moves past a command as it leaves the buffer, except past a fence
        # with AV or of kind PD, which leaves the buffer as it starts and moves
        # cqh on completion.
        # The AV store's state and answer code as one kept net, so ``b.valid``
        # reaches cqh's load enable through one LUT.
        store_passes, stmt_passes = _kept(~st_store_n & (b.payload.resp == 0), "store_passes")
        m.d.comb += stmt_passes
        store_passes_wsi, stmt_pw = _kept(st_store & (b.payload.resp == 0) & fence_wsi, "store_passes_wsi")
        m.d.comb += stmt_pw
        drain_adv, stmt_drain = _kept(drain_done & ~fence_av, "drain_adv")
        # cqh's load enable: ``exec_adv`` (one LUT), the other terms of
        # registers as one net and ``b.valid`` with the store's state and
        # answer code (``store_passes``, one net of registers) join in the
        # last LUT, not kept, so synthesis may fold the flip-flops' reset into it.
        head_moves, stmt_moves = _kept(restart | drain_adv, "head_moves")
        m.d.comb += [stmt_drain, stmt_moves]
        head_ce = exec_adv | head_moves | (b_valid & store_passes)
        with m.If(head_ce):
            m.d.sync += [head.eq(Mux(restart, 0, head_inc)),
                         head_inc.eq(Mux(restart, 1, (head_inc + 1)[:_INDEX_BITS] & mask))]
        with m.If(restart):
            m.d.sync += [fetch_idx.eq(0), fetch_inc.eq(1)]

        # The AV store's state and a non-OKAY answer as one net (b_valid joins
        # in the last LUT).
        store_fails, stmt_fails = _kept(~st_store_n & (b.payload.resp != 0), "store_fails")
        m.d.comb += stmt_fails
        fail_exec, stmt_fe = _kept(fail_mf | fail_ill, "fail_exec")
        m.d.comb += stmt_fe
        fail_now = fail_exec | (b_valid & store_fails)
        m.d.sync += [
            set_cqmf.eq(fail_mf | (b_valid & store_fails)),
            set_cmd_ill.eq(fail_ill),
            set_fence_w_ip.eq(((level == 3) & head_cmd.wsi_now)
                              | (drain_adv & fence_wsi) | (b_valid & store_passes_wsi)),
            failed.eq(fail_now),
        ]

        # Whether execution goes on next cycle: this block's registers here,
        # the register file's bits (``regs_stay``) in the room terms below.
        ready_stays = run & st_exec & ~failed
        regs_stay, stmt_rs = _kept(regs.enable & on & ~regs.status.cqmf & ~regs.status.cmd_ill,
                                   "regs_stay")
        m.d.comb += stmt_rs
        # Execution leaves Exec on an error, an INVAL_DDT or a fence that waits.
        leaves, stmt_leaves = _kept((ready & head_cmd.stops) | ((level == 3) & head_cmd.waits), "leaves")
        m.d.comb += stmt_leaves
        # Whether a command is at the head next: with a pop, one was stored
        # behind it; without, the head stays or one was stored.  Both worked
        # out from registers, the pop and ``leaves`` join in one LUT.
        head_if_pop, stmt_hp = _kept(ready_stays & buffer.stored, "head_if_pop")
        head_if_idle, stmt_hi = _kept(ready_stays & (buffer.stored | buffer.have), "head_if_idle")
        m.d.comb += [stmt_hp, stmt_hi]
        # The terms of registers as nets of their own (two LUT levels and
        # one), the answers of the store and of the lookup join in the last LUT.
        exec_stays, stmt_es = _kept(st_exec & ~go_inval & ~to_drain & ~to_store, "exec_stays")
        drain_back, stmt_db = _kept(st_drain & (~run | (pd_reached & ~fence_av)), "drain_back")
        m.d.comb += [stmt_es, stmt_db]
        next_exec = exec_stays | drain_back | store_answered | (st_inval & inval.ready)
        # A failed store stops the queue a cycle later than a failed command
        # (through ``failed``); nothing runs meanwhile: execution is not back
        # in Exec and no fetch was allowed for that cycle.  (Back to Exec from
        # another state, it acts a cycle later; staying in Exec, no store can
        # fail, so ``fail_mf | fail_ill`` is ``fail_now`` here.)
        m.d.comb += next_run.eq(regs.enable & on & ~regs.status.cqmf & ~regs.status.cmd_ill
                                & ~fail_mf & ~fail_ill & ~failed)
        m.d.sync += [
            st_exec.eq(next_exec),
            hold.eq(~next_exec),
            st_drain.eq(to_drain | (st_drain & ~drain_abandon & ~drain_done)),
            st_store.eq(start_store | (st_store & ~b_valid)),
            st_store_n.eq(~start_store & ~(st_store & ~b_valid)),
            st_inval.eq(go_inval | (st_inval & ~inval.ready)),
            run.eq(next_run),
            flush.eq(~next_run),
        ]
        # Whether a command is at the head next, and the room next worked out
        # for both values of ``resp.ready`` (it joins in the last LUT; with no
        # response held it does not matter): level[1] is "not full", level[0]
        # "full or none held" (see _NEED_INVAL).  The register file's bits
        # join in the room terms (each one LUT of ``regs_stay`` and registers).
        next_head, stmt_nh = _kept(~leaves & Mux(popping, head_if_pop, head_if_idle), "next_head")
        stays_nf, stmt_a = _kept(regs_stay & ~(resp_full | (resp_valid & push)), "stays_not_full")
        held_stays, stmt_h = _kept(regs_stay & resp_valid, "held_stays")
        room_taken, stmt_b = _kept(regs_stay & ~push & ~resp_full, "room_taken")
        room_kept, stmt_c = _kept(regs_stay & (resp_full | (resp_valid & push) | (~push & ~resp_valid)),
                                  "room_kept")
        m.d.comb += [stmt_nh, stmt_a, stmt_h, stmt_b, stmt_c]
        # Each bit one LUT with ``resp.ready`` (kept, so it is not built on
        # a shared select).
        level_next = Signal(2, attrs={"keep": 1})
        m.d.comb += [
            level_next[1].eq(next_head & (stays_nf | (held_stays & resp.ready))),
            level_next[0].eq(next_head & ((resp.ready & room_taken) | (~resp.ready & room_kept))),
        ]
        m.d.sync += level.eq(level_next)

        # Slot accounting.
        # One adder, its step (-2..+1) one LUT of registers.
        popped, drop = Signal(), Signal()
        m.d.sync += [popped.eq(popping), drop.eq(burst_done & discarding & run)]
        # As wide as the sum, so the adder's operands match (lint: no width expansion).
        step = Signal(signed(len(reserved) + 1))
        with m.Switch(Cat(issued, drop, popped)):
            with m.Case(0b001):
                m.d.comb += step.eq(1)
            with m.Case(0b010, 0b100, 0b111):
                m.d.comb += step.eq(-1)
            with m.Case(0b110):
                m.d.comb += step.eq(-2)
        # The burst counts: each next value is worked out from registers for
        # a beat arriving (the last of its burst or not) and for none (kept),
        # and ``r.valid`` selects in the last LUT.
        # ``outstanding`` counts an issue a cycle late (through ``issued``: a
        # burst is answered two cycles after its issue at the earliest), so
        # what is still to arrive after this cycle counts ``issued`` too.  On
        # a flush everything not yet arrived belongs to the dropped prefetch;
        # the buffer is emptied.  (No issue while flushing.)
        width = len(outstanding)
        # discard - 1, or 0 when it is 0 (the borrow out of the subtraction).
        discard_minus = Signal(width + 1)
        m.d.comb += discard_minus.eq(discard - 1)
        discard_down = discard_minus[:width] & ~discard_minus[width].replicate(width)
        after_step = (reserved + step)[:width]
        # ``outstanding_more`` (outstanding + 1) is kept alongside, so what is
        # still to arrive is a choice between registers.
        plus = Signal(width, init=1, name="outstanding_more")
        arrive_if_done = Mux(issued, outstanding, outstanding_less)
        arrive_if_not = Mux(issued, plus, outstanding)
        counts = [
            (outstanding, arrive_if_done, arrive_if_not),
            (plus, Mux(issued, plus, outstanding), Mux(issued, (plus + 1)[:width], plus)),
            (outstanding_less, Mux(issued, outstanding_less, (outstanding_less - 1)[:width]),
             Mux(issued, outstanding, outstanding_less)),
            # (``issued`` outermost: not built on the count's own terms.)
            (discard, Mux(issued, Mux(flush, outstanding, discard_down), Mux(flush, outstanding_less, discard_down)),
             Mux(issued, Mux(flush, plus, discard), Mux(flush, outstanding, discard))),
        ]
        # (As AND-OR, not multiplexers, so synthesis does not make the cases
        # where a count holds into a clock enable of ``r.valid``.)
        def select(sel, a, b):
            sel = sel.replicate(width)
            return (a & sel) | (b & ~sel)
        for count, if_done, if_not in counts:
            beat_value, stmt_d = _kept(Mux(last_beat, if_done, if_not), f"{count.name}_if_beat")
            idle_value, stmt_i = _kept(if_not, f"{count.name}_if_idle")
            m.d.comb += [stmt_d, stmt_i]
            m.d.sync += count.eq(select(r.valid, beat_value, idle_value))
        # ``reserved`` takes ``r.valid`` only on a flush (what is still to
        # arrive), so its adder goes straight to its last LUT.
        arrive_if_beat, stmt_ab = _kept(Mux(last_beat, arrive_if_done, arrive_if_not), "arrive_if_beat")
        still_to_arrive, stmt_sta = _kept(select(r.valid, arrive_if_beat, arrive_if_not), "still_to_arrive")
        m.d.comb += [stmt_ab, stmt_sta]
        m.d.sync += reserved.eq(Mux(flush, still_to_arrive, after_step))

        # cqon: up at once on enable; down only once nothing issued is
        # outstanding (``run`` covers a fetch issued in the cycle cqen drops).
        busy = (outstanding != 0) | issued | st_store | st_inval | run
        with m.If(regs.enable):
            m.d.sync += on.eq(1)
        with m.Elif(~busy):
            m.d.sync += on.eq(0)

        return m


class _PrefetchBuffer(wiring.Component):
    """FIFO of prefetched commands: memories with a synchronous read port whose
    read registers hold the head (``r_data`` and ``r_flags``, valid when
    ``have``).  An entry's data is presented on ``w_data`` a cycle before its
    flags (it is written into the next free slot every cycle, so the data
    memory has no write enable); its flags are written (``w_flags_en``) a
    cycle later, which is when the FIFO counts it.  ``pop`` (only while
    ``have`` and not ``flush``), the writes and ``flush`` (empties it) act at the
    clock edge.  A pop loads the next head at once only with ``pop_load``;
    otherwise the popped entry stays readable in the read registers, and so
    it does while ``hold``; the write side is never offered more than ``depth`` entries
    (the command queue counts its slots)."""

    def __init__(self, *, width, flags, depth):
        self.width = width
        self.flags = flags
        self.depth = depth
        super().__init__({
            "w_data": In(width), "w_flags_en": In(1), "w_flags": In(flags),
            "flush": In(1), "pop": In(1), "pop_load": In(1), "hold": In(1),
            "have": Out(1), "stored": Out(1), "r_data": Out(width), "r_flags": Out(flags),
        })

    def elaborate(self, platform):
        m = Module()
        # One slot more than entries, so equal pointers mean empty; the data
        # of the entry after the last counted one is written into a free slot.
        ptr_bits = self.depth.bit_length()
        m.submodules.storage = storage = Memory(shape=self.width, depth=1 << ptr_bits, init=[])
        m.submodules.flag_storage = flag_storage = Memory(shape=self.flags, depth=1 << ptr_bits, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        wf_port = flag_storage.write_port()
        rf_port = flag_storage.read_port(domain="sync")
        wf_ptr = Signal(ptr_bits)       # flags: the next entry to write (counted)
        wf_inc = Signal(ptr_bits, init=1)
        # The read pointers need no reset (they only ever move together, and a
        # flush moves the write pointers to them), so their enable is the read.
        r_ptr = Signal(ptr_bits, reset_less=True)   # the entry after the head
        r_inc = Signal(ptr_bits, init=1, reset_less=True)
        # Entries (counted) in the memory behind the head: a register, kept
        # with the pointers (two or more when they differ as well).
        stored = Signal()
        differs = _differ(m, wf_ptr, r_inc, "more")
        # The load: into empty read registers (from registers), or with a pop.
        fills, stmt_fills = _kept(~self.flush & stored & ~self.have & ~self.hold, "fills")
        load, stmt_load = _kept(fills | (stored & self.pop_load), "load")
        m.d.comb += stmt_fills
        m.d.comb += [
            stmt_load,
            # The slot of an entry whose flags are written this cycle is taken:
            # data arriving now goes to the one after it.
            w_port.addr.eq(Mux(self.w_flags_en, wf_inc, wf_ptr)),
            w_port.data.eq(self.w_data), w_port.en.eq(1),
            wf_port.addr.eq(wf_ptr), wf_port.data.eq(self.w_flags), wf_port.en.eq(self.w_flags_en),
            r_port.addr.eq(r_ptr), r_port.en.eq(load), self.r_data.eq(r_port.data),
            rf_port.addr.eq(r_ptr), rf_port.en.eq(load), self.r_flags.eq(rf_port.data),
            self.stored.eq(stored),
        ]
        # stored' = ~flush & (w_flags_en | (load ? more : stored)), where
        # ``more`` (two or more entries) is stored & the pointers differ, for both
        # values of pop_load (fills and pop_load never meet: one needs ``have``,
        # the other not; a pop never comes with ``flush``), so the pop joins in
        # the last LUT.
        # Worked out as well for both values of the pointer compare (two LUT
        # levels), which joins in the last LUT too:
        # if_idle = written | (~flush & stored & (have | hold | differs)).
        written = ~self.flush & self.w_flags_en
        base_idle, stmt_bi = _kept(~self.flush & (self.w_flags_en | (stored & (self.have | self.hold))),
                                   "stored_base_idle")
        m.d.comb += stmt_bi
        if_differs, stmt_id = _kept(Mux(self.pop_load, written | stored, base_idle | (~self.flush & stored)),
                                    "stored_if_differs")
        if_same, stmt_is = _kept(Mux(self.pop_load, written, base_idle), "stored_if_same")
        m.d.comb += [stmt_id, stmt_is]
        m.d.sync += stored.eq(Mux(differs, if_differs, if_same))
        with m.If(self.flush):
            m.d.sync += [wf_ptr.eq(r_ptr), wf_inc.eq(r_inc)]
        with m.Elif(self.w_flags_en):
            m.d.sync += [wf_ptr.eq(wf_inc), wf_inc.eq(wf_inc + 1)]
        with m.If(load):
            m.d.sync += [r_ptr.eq(r_inc), r_inc.eq(r_inc + 1)]
        # have' = ~flush & (load | (have & ~pop)).  Without a pop that is one
        # LUT of registers; a pop (only while ``have``, never with ``flush``)
        # keeps it only with ``pop_load``.
        have_idle, stmt_hi = _kept(~self.flush & (self.have | (stored & ~self.hold)), "have_if_idle")
        m.d.comb += stmt_hi
        m.d.sync += self.have.eq(Mux(self.pop, stored & self.pop_load, have_idle))
        return m

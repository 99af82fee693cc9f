# The register file of DESIGN.md §2 (offsets and fields as the RISC-V IOMMU
# specification v1.0, §5), behind an AXI4-Lite slave.

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import (
    CAPABILITIES_VERSION, MAX_LOG2SZ_1, REG, REGISTERS, Access, DdtpMode,
)

from .bus import (
    NEVER_SET, AxiLiteSignature, DdtpSignature, QueueRegsSignature, queue_status_names,
)

__all__ = ["RegisterFile", "QUEUES"]

#: Width of the queue indices: at most 2**16 entries (LOG2SZ-1 is clamped to 15).
INDEX_BITS = MAX_LOG2SZ_1 + 1

#: The three queues, by register-name prefix.
QUEUES = ("cq", "fq", "pq")

#: Each queue's software-owned and hardware-owned index registers.
_SW_INDEX = {"cq": "cqt", "fq": "fqh", "pq": "pqh"}
_HW_INDEX = {"cq": "cqh", "fq": "fqt", "pq": "pqt"}
#: ipsr bit of each queue.
_IPSR_BIT = {"cq": "cip", "fq": "fip", "pq": "pip"}
#: Status bits that stop a queue ("error bits"): cleared when the queue is enabled.
_ERROR_BITS = {"cq": ("cqmf", "cmd_ill"), "fq": ("fqmf", "fqof"),
               "pq": ("pqmf", "pqof")}


def _high_word_bits(reg):
    """How many low bits of ``reg``'s high word belong to writable fields."""
    top = max(f.lsb + f.width for f in reg.fields if f.access is Access.RW)
    return max(top - 32, 0)


def _strobe_mask(wstrb):
    return Cat(*(b.replicate(8) for b in wstrb))


class RegisterFile(wiring.Component):
    """Memory-mapped registers of prifence (DESIGN.md §2), on AXI4-Lite.

    Every register is 32-bit accessible; a 64-bit register is two words.  The
    table :data:`prifence.formats.REGISTERS` defines offsets and fields; this
    component only decides where each field's value comes from and what a
    write does to it.

    Contract
    --------
    * AXI4-Lite: the address and data channels are accepted independently, one
      write and one read at a time; every response is OKAY.  Unmapped offsets
      read 0 and ignore writes; reserved bits read 0.  ``wstrb`` is honoured
      per byte: bytes not strobed keep their committed value.
    * 64-bit registers: a write to the high word sets that register's *held
      high word*; a write to the low word commits {held high word, new low
      word} at once.  Reads return committed values: RVALID rises three
      cycles after the AR handshake, with the values of the cycle after it.
    * ``ddtp``: a write asking for a mode other than Off, Bare or 1LVL, or
      going from 1LVL to 1LVL, is ignored whole.  An accepted write pulses
      ``ddtp.written``.  ``busy`` reads 0.
    * Queue bases (cqb, fqb, pqb): LOG2SZ-1 above 15 reads back 15 (WARL).  A
      base write is ignored while the queue is enabled or on; an accepted one
      zeroes the queue's software-owned index.
    * Indices keep only their low LOG2SZ bits.  Hardware-owned indices come
      from the queue engines.
    * xqcsr: busy = (xqen ≠ xqon); a write while busy is ignored whole, W1C
      bits included.  Enabling a queue (xqen 0→1) clears its error bits (the
      engine zeroes its hardware-owned index itself).  A status bit that the
      engine sets in the cycle software clears it stays set.
    * ipsr: a queue's pending bit is set while its interrupt enable is 1 by a
      published record (``notify``) or by one of its status bits becoming set
      (for the CQ: cmd_ill, cqmf, fence_w_ip).  Writing 1 clears it, and it is
      set again at once if the enable is 1 and a status bit of the queue is
      still set.  ``irq_cq/irq_fq/irq_pq`` are the pending bits.
    """

    def __init__(self, *, addr_width=56):
        if not isinstance(addr_width, int) or not 32 <= addr_width <= 64:
            raise TypeError(f"addr_width must be an integer in 32..64, not {addr_width!r}")
        self.addr_width = addr_width
        members = {
            "bus": Out(AxiLiteSignature()),
            "ddtp": Out(DdtpSignature()),
            "irq_cq": Out(1), "irq_fq": Out(1), "irq_pq": Out(1),
        }
        for q in QUEUES:
            members[q] = In(QueueRegsSignature(queue_status_names(q)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # --- committed state -------------------------------------------------
        ddtp_mode = Signal(4, name="ddtp_mode")
        ddtp_ppn = Signal(44, name="ddtp_ppn")
        base_log2 = {q: Signal(5, name=f"{q}b_log2sz_1") for q in QUEUES}
        base_ppn = {q: Signal(44, name=f"{q}b_ppn") for q in QUEUES}
        sw_index = {q: Signal(INDEX_BITS, name=f"{_SW_INDEX[q]}_index") for q in QUEUES}
        enable = {q: Signal(name=f"{q}en") for q in QUEUES}
        ie = {q: Signal(name=f"{q}ie") for q in QUEUES}
        status = {q: {n: Signal(name=n) for n in queue_status_names(q)} for q in QUEUES}
        pending = {q: Signal(name=_IPSR_BIT[q]) for q in QUEUES}
        # Only the high-word bits of writable fields are held (the rest read 0).
        held_high = {r.name: Signal(_high_word_bits(r), name=f"{r.name}_held_high")
                     for r in REGISTERS if r.size == 8 and r.name != "capabilities"}

        port = {q: getattr(self, q) for q in QUEUES}
        index_mask = {}
        for q in QUEUES:
            # Bit i of the mask is set when i < LOG2SZ.  Registered: it changes
            # only with the base, which only changes while the queue is off.
            index_mask[q] = Signal(INDEX_BITS, name=f"{q}_index_mask", init=1)
            m.d.sync += index_mask[q].eq(Cat(1, *(base_log2[q] >= i for i in range(1, INDEX_BITS))))
            m.d.comb += [
                port[q].enable.eq(enable[q]),
                port[q].base_ppn.eq(base_ppn[q]),
                port[q].log2sz_1.eq(base_log2[q]),
                port[q].sw_index.eq(sw_index[q]),
            ]
            for n in queue_status_names(q):
                m.d.comb += getattr(port[q].status, n).eq(status[q][n])
        m.d.comb += [
            self.ddtp.mode.eq(ddtp_mode), self.ddtp.ppn.eq(ddtp_ppn),
            self.irq_cq.eq(pending["cq"]), self.irq_fq.eq(pending["fq"]),
            self.irq_pq.eq(pending["pq"]),
        ]
        busy = {q: Signal(name=f"{q}_busy") for q in QUEUES}
        for q in QUEUES:
            m.d.comb += busy[q].eq(enable[q] != port[q].on)

        # --- the value each field reads as (one table drives reads and writes)
        sources = {
            ("capabilities", "version"): CAPABILITIES_VERSION,
            ("capabilities", "ats"): 1,
            ("capabilities", "igs"): 1,            # WSI only
            ("capabilities", "pas"): self.addr_width,
            ("fctl", "be"): 0, ("fctl", "wsi"): 1, ("fctl", "gxl"): 0,
            ("ddtp", "iommu_mode"): ddtp_mode, ("ddtp", "busy"): 0, ("ddtp", "ppn"): ddtp_ppn,
            ("ipsr", "cip"): pending["cq"], ("ipsr", "fip"): pending["fq"],
            ("ipsr", "pip"): pending["pq"],
        }
        for q in QUEUES:
            sources[(f"{q}b", "log2sz_1")] = base_log2[q]
            sources[(f"{q}b", "ppn")] = base_ppn[q]
            sources[(_SW_INDEX[q], "index")] = sw_index[q]
            sources[(_HW_INDEX[q], "index")] = port[q].hw_index[:INDEX_BITS] & index_mask[q]
            csr = f"{q}csr"
            sources[(csr, f"{q}en")] = enable[q]
            sources[(csr, f"{q[0]}ie")] = ie[q]
            sources[(csr, f"{q}on")] = port[q].on
            sources[(csr, "busy")] = busy[q]
            for n, s in status[q].items():
                sources[(csr, n)] = s
            for n in NEVER_SET:
                if any(f.name == n for f in REG[csr].fields):
                    sources[(csr, n)] = 0

        value = {}
        for reg in REGISTERS:
            v = Signal(reg.size * 8, name=f"{reg.name}_value")
            for f in reg.fields:
                m.d.comb += v[f.lsb:f.lsb + f.width].eq(sources[(reg.name, f.name)])
            value[reg.name] = v

        # --- read channel ----------------------------------------------------
        # Three stages: the address is decoded into one flip-flop per register
        # word as it is accepted; the next cycle, the selected word is picked
        # out of each group of eight words (an AND-OR, two LUT levels) into a
        # register per group; the cycle after, those are ORed into ``rdata``.
        # No path crosses the decoder and the 21-way multiplexer, or the whole
        # multiplexer.
        read_words = [(reg, word) for reg in REGISTERS for word in range(reg.size // 4)]
        read_sel = {(reg.name, word): Signal(name=f"read_{reg.name}_{word}")
                    for reg, word in read_words}
        reading = Signal()
        picking = Signal()
        m.d.comb += [bus.arready.eq(~reading & ~picking & ~bus.rvalid),
                     bus.rresp.eq(0), bus.bresp.eq(0)]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += reading.eq(1)
            m.d.sync += [read_sel[(reg.name, word)].eq(bus.araddr[2:] == (reg.offset >> 2) + word)
                         for reg, word in read_words]
        selected_words = [value[reg.name].word_select(word, 32) & read_sel[(reg.name, word)].replicate(32)
                          for reg, word in read_words]

        def or_tree(words):
            # A balanced OR tree (pairs of pairs), not a chain.
            level = words
            while len(level) > 1:
                pairs = []
                for k in range(0, len(level), 2):
                    node = Signal(32)
                    m.d.comb += node.eq(level[k] | level[k + 1] if k + 1 < len(level) else level[k])
                    pairs.append(node)
                level = pairs
            return level[0]

        groups = [Signal(32, name=f"read_group_{k}") for k in range(0, len(selected_words), 8)]
        with m.If(reading):
            m.d.sync += reading.eq(0)
            m.d.sync += [group.eq(or_tree(selected_words[8 * k:8 * k + 8]))
                         for k, group in enumerate(groups)]
        m.d.sync += picking.eq(reading)
        with m.If(picking):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(or_tree(groups))]
        with m.Elif(bus.rready):
            m.d.sync += bus.rvalid.eq(0)

        # --- write channel: hold address and data until both are here ---------
        aw_full = Signal()
        w_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full)]
        # The address is held as it is accepted and decoded in the arming
        # cycle below, so the write itself fans out from one flip-flop per
        # register word.
        words = sorted({(r.offset >> 2) + w for r in REGISTERS for w in range(r.size // 4)})
        aw_word = Signal(len(bus.awaddr) - 2, name="aw_word")
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_word.eq(bus.awaddr[2:])]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        # Once both halves are here, one cycle arms a per-word write strobe
        # flip-flop; the write happens in the next cycle from those strobes.
        armed = Signal()
        write_now = {w: Signal(name=f"write_now_{w}") for w in words}
        with m.If(aw_full & w_full & ~armed & ~bus.bvalid):
            m.d.sync += armed.eq(1)
            m.d.sync += [write_now[w].eq(aw_word == w) for w in words]
        with m.If(armed):
            m.d.sync += [armed.eq(0), aw_full.eq(0), w_full.eq(0), bus.bvalid.eq(1)]
            m.d.sync += [strobe_ff.eq(0) for strobe_ff in write_now.values()]

        strobe = Signal(32)
        m.d.comb += strobe.eq(_strobe_mask(w_strb))

        # Whether a ddtp low-word write would be accepted is worked out in the
        # arming cycle (the data and the current mode cannot change before the
        # write), so the write itself is enabled by one flip-flop.
        ddtp_legal = Signal(name="ddtp_legal")
        with m.If(aw_full & w_full & ~armed & ~bus.bvalid):
            f = REG["ddtp"].field("iommu_mode")
            lane = slice(f.lsb, f.lsb + f.width)
            mode = (ddtp_mode & ~strobe[lane]) | (w_data[lane] & strobe[lane])
            m.d.sync += ddtp_legal.eq(
                ((mode == DdtpMode.OFF) | (mode == DdtpMode.BARE) | (mode == DdtpMode.LVL1)) &
                ~((ddtp_mode == DdtpMode.LVL1) & (mode == DdtpMode.LVL1)))
        written_ones = Signal(32)           # W1C: a bit is cleared by a strobed 1
        m.d.comb += written_ones.eq(w_data & strobe)

        def merged(word_value):
            return (word_value & ~strobe) | (w_data & strobe)

        def field_of(word, reg, name, base=0):
            f = reg.field(name)
            return word[f.lsb - base:f.lsb - base + f.width]

        # Status set pulses are applied after the software writes below (later
        # assignments win): "the set wins".
        clear_status = {q: {n: Signal(name=f"clear_{n}") for n in status[q]} for q in QUEUES}
        clear_pending = {q: Signal(name=f"clear_{_IPSR_BIT[q]}") for q in QUEUES}
        m.d.comb += self.ddtp.written.eq(0)

        def case(word):
            return m.If(write_now[word])

        # 64-bit registers with writable fields: held high word, low-word commit.
        for name, held in held_high.items():
            reg = REG[name]
            with case((reg.offset >> 2) + 1):
                m.d.sync += held.eq(merged(value[name].word_select(1, 32))[:len(held)])
            with case(reg.offset >> 2):
                cand = Signal(64, name=f"{name}_candidate")
                m.d.comb += cand.eq(Cat(merged(value[name].word_select(0, 32)), held))
                if name == "ddtp":
                    with m.If(ddtp_legal):
                        m.d.sync += [ddtp_mode.eq(mode),
                                     ddtp_ppn.eq(field_of(cand, reg, "ppn"))]
                        m.d.comb += self.ddtp.written.eq(1)
                else:
                    q = name[:2]
                    log2 = field_of(cand, reg, "log2sz_1")
                    with m.If(~enable[q] & ~port[q].on):
                        m.d.sync += [
                            base_log2[q].eq(Mux(log2 > MAX_LOG2SZ_1, MAX_LOG2SZ_1, log2)),
                            base_ppn[q].eq(field_of(cand, reg, "ppn")),
                            sw_index[q].eq(0),
                        ]
        for q in QUEUES:
            reg = REG[_SW_INDEX[q]]
            with case(reg.offset >> 2):
                m.d.sync += sw_index[q].eq(merged(value[reg.name]) & index_mask[q])
            reg = REG[f"{q}csr"]
            with case(reg.offset >> 2):
                with m.If(~busy[q]):
                    cand = merged(value[reg.name])
                    new_en = field_of(cand, reg, f"{q}en")
                    m.d.sync += [enable[q].eq(new_en),
                                 ie[q].eq(field_of(cand, reg, f"{q[0]}ie"))]
                    for n in status[q]:
                        clear = field_of(written_ones, reg, n)
                        if n in _ERROR_BITS[q]:
                            clear = clear | (new_en & ~enable[q])
                        m.d.comb += clear_status[q][n].eq(clear)
        reg = REG["ipsr"]
        with case(reg.offset >> 2):
            for q in QUEUES:
                m.d.comb += clear_pending[q].eq(field_of(written_ones, reg, _IPSR_BIT[q]))

        # --- status bits and interrupt pending bits --------------------------
        # The engines' set pulses and notify reach a pending bit through two
        # LUTs: each pulse is ANDed with a term worked out from flip-flops
        # ("would this set the bit"), and those are ORed with the bit's own
        # next value.  An ipsr write never coincides with a csr write, so a
        # status bit's W1C clear is not part of "still set".
        for q in QUEUES:
            for n, s in status[q].items():
                with m.If(clear_status[q][n]):
                    m.d.sync += s.eq(0)
                with m.If(getattr(port[q].set_status, n)):
                    m.d.sync += s.eq(1)
            clear = clear_pending[q]
            keep = Signal(name=f"{q}_pending_keep")
            m.d.comb += keep.eq((pending[q] & ~clear) |
                                (ie[q] & clear & Cat(*status[q].values()).any()))
            raises = [port[q].notify & ie[q]]
            for n, s in status[q].items():
                would_raise = Signal(name=f"{q}_{n}_would_raise")
                m.d.comb += would_raise.eq(ie[q] & (~s | clear))
                raises.append(getattr(port[q].set_status, n) & would_raise)
            m.d.sync += pending[q].eq(keep | Cat(*raises).any())

        return m

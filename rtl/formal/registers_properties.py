"""Properties of :class:`rtl.registers.RegisterFile` towards the queue engines
(DESIGN §2 "Queue rules" and "Timing").

The engine proofs (``page_request_queue_properties``,
``command_queue_properties``) assume that software, through the register file,
changes xqen only while the queue is not busy, never moves a queue's base while
it is enabled or on, keeps the software-owned index inside the ring, clears the
error bits when the queue is enabled, and lets an engine's set pulse win over a
clear.  This proof shows the register file guarantees exactly that, for any
AXI4-Lite traffic that keeps the channel rules (a valid address or data beat is
held, unchanged, until accepted) and any engine behaviour (xqon, set pulses,
indices free), so the engine proofs compose with it.
"""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Signal

from rtl.bus import queue_status_names
from rtl.registers import QUEUES, RegisterFile

from .env import any_seq, assume, check, cover, hold_reset_low

__all__ = ["RegisterFileProperties"]

_ERROR_BITS = {"cq": ("cqmf", "cmd_ill"), "fq": ("fqmf", "fqof"), "pq": ("pqmf", "pqof")}


class RegisterFileProperties(Elaboratable):
    """The register file with free AXI4-Lite traffic and free queue engines."""

    def __init__(self, *, block=None):
        self.block = block if block is not None else RegisterFile()

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        dut = m.submodules.dut = self.block
        bus = dut.bus

        # AXI4-Lite master: free, but a valid beat is held unchanged until accepted.
        for valid, ready, payload in (("awvalid", "awready", ("awaddr", "awprot")),
                                      ("wvalid", "wready", ("wdata", "wstrb")),
                                      ("arvalid", "arready", ("araddr", "arprot"))):
            v, r = getattr(bus, valid), getattr(bus, ready)
            m.d.comb += v.eq(any_seq(1))
            stalled = Signal(name=f"{valid}_stalled")
            m.d.sync += stalled.eq(v & ~r)
            assume(m, ~stalled | v)
            for name in payload:
                sig = getattr(bus, name)
                m.d.comb += sig.eq(any_seq(len(sig)))
                before = Signal.like(sig, name=f"{name}_before")
                m.d.sync += before.eq(sig)
                assume(m, ~stalled | (sig == before))
        m.d.comb += [bus.bready.eq(any_seq(1)), bus.rready.eq(any_seq(1))]

        for q in QUEUES:
            port = getattr(dut, q)
            m.d.comb += [port.on.eq(any_seq(1)), port.hw_index.eq(any_seq(16)),
                         port.notify.eq(any_seq(1))]
            names = queue_status_names(q)
            for n in names:
                m.d.comb += getattr(port.set_status, n).eq(any_seq(1))
            prev = {}
            for key, sig in (("enable", port.enable), ("on", port.on), ("base", port.base_ppn),
                             ("log2", port.log2sz_1), ("status", port.status.as_value()),
                             ("set", port.set_status.as_value())):
                prev[key] = Signal.like(sig, name=f"{q}_{key}_prev")
                m.d.sync += prev[key].eq(sig)
            # xqen changes only while the queue is not busy.
            changed = port.enable != prev["enable"]
            check(m, ~changed | (prev["enable"] == prev["on"]))
            # The base and size change only while the queue is off and disabled.
            moved = (port.base_ppn != prev["base"]) | (port.log2sz_1 != prev["log2"])
            check(m, ~moved | (~prev["enable"] & ~prev["on"]))
            check(m, port.log2sz_1 <= 15)
            # The software-owned index stays inside the ring.
            mask = Signal(16, name=f"{q}_ring_mask")
            m.d.comb += mask.eq((Const(2, 17) << port.log2sz_1) - 1)
            check(m, (port.sw_index & ~Cat(mask, Const(0, 16))) == 0)
            for k, n in enumerate(names):
                bit = port.status.as_value()[k]
                was, set_ = prev["status"][k], prev["set"][k]
                # A set pulse wins; nothing else sets a status bit.
                check(m, ~set_ | bit)
                check(m, ~(bit & ~was) | set_)
                if n in _ERROR_BITS[q]:
                    # Enabling the queue clears its error bits.
                    check(m, ~(port.enable & ~prev["enable"]) | ~bit | set_)
            cover(m, changed & port.enable & ~prev["on"])
            cover(m, moved)
        cover(m, dut.cq.enable & dut.pq.enable & (dut.cq.sw_index != 0))
        return m

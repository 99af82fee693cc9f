# A pin-limited FPGA wrapper for implementation runs (synthesis, place and
# route, timing) of a core whose interface is far wider than a package's pins.

from amaranth.hdl import Cat, ClockDomain, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out, Flow

__all__ = ["ScanWrapper"]


class ScanWrapper(wiring.Component):
    """Bring every port of ``core`` out through four pins.

    The wrapper exists to measure a core on a real device: resources and
    Fmax.  It is not a board integration.

    * Every input port of the core is driven from a register of one long
      shift chain fed by ``scan_in`` (one bit per clock), so no input is a
      constant and synthesis cannot prune logic behind it.
    * Every output port is registered, then folded by a two-stage pipelined
      XOR tree into ``scan_out``, so every output bit stays observable.
    * ``clk`` clocks the core; ``rst`` (active high) resets it through a
      reset synchroniser, so the reset net starts at a flip-flop and can use
      a global buffer.

    Every path into and out of the core starts and ends at a flip-flop, so
    the reported Fmax is the core's, not the wrapper's or the pads'.

    Parameters
    ----------
    core : wiring.Component
        The core; all of its ports are flattened from its signature.
    """

    clk: In(1)
    rst: In(1)
    scan_in: In(1)
    scan_out: Out(1)

    def __init__(self, core):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be a wiring.Component, not {core!r}")
        self.core = core
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain(local=True)
        m.d.comb += sync.clk.eq(self.clk)
        m.submodules.reset_sync = ResetSynchronizer(self.rst, domain="sync")
        m.submodules.core = core = self.core

        inputs, outputs = [], []
        for path, member, value in core.signature.flatten(core):
            value = Value.cast(value)          # views (structs) as plain bits
            (inputs if member.flow is Flow.In else outputs).append(value)

        in_width = sum(len(v) for v in inputs)
        chain = Signal(max(in_width, 1))
        m.d.sync += chain.eq(Cat(self.scan_in, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)

        captured = Signal(sum(len(v) for v in outputs))
        m.d.sync += captured.eq(Cat(*outputs))
        # Fold 8 bits per LUT-level group into partial parities, register
        # them, then fold those: two short stages instead of one deep tree.
        partial = Signal((len(captured) + 15) // 16)
        for i in range(len(partial)):
            m.d.sync += partial[i].eq(captured[16 * i:16 * (i + 1)].xor())
        m.d.sync += self.scan_out.eq(partial.xor())
        return m

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
    * Every output port is folded straight into registered partial parities
      (one LUT level: 4 bits per LUT), which a second registered stage folds
      into ``scan_out``, so every output bit stays observable without a
      capture flip-flop per output bit.
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

        # Fold the outputs, 4 bits per partial parity (one LUT4 on either
        # family, so the path from a core flip-flop through an output's logic
        # gains one LUT level at most), register the partials, then fold
        # those 16 at a time and again: short registered stages, no capture
        # flip-flop per output bit.
        folded = Cat(*outputs)
        stage = Signal((len(folded) + 3) // 4)
        for i in range(len(stage)):
            m.d.sync += stage[i].eq(folded[4 * i:4 * (i + 1)].xor())
        while len(stage) > 1:
            nxt = Signal((len(stage) + 15) // 16)
            for i in range(len(nxt)):
                m.d.sync += nxt[i].eq(stage[16 * i:16 * (i + 1)].xor())
            stage = nxt
        m.d.sync += self.scan_out.eq(stage)
        return m

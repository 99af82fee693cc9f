"""Properties of :class:`rtl.response_arbiter.ResponseArbiter` (DESIGN §3: a
response counts as accepted on ``prg_resp`` when its own source sees ``ready``,
which the fences of the command queue rely on; §4: each source keeps its order).

Both inputs follow the stream rules (a valid payload is held until accepted);
``o.ready`` is free.  Two proofs: ``exact`` (nothing is held: an input transfer
is an output transfer of that payload in that cycle; one input at a time),
which closes by k-induction, and ``fair`` (round-robin: a valid input waits for
at most one transfer of the other; ``o`` keeps a stalled payload), which needs
the arbiter's internal lock/preference state for induction and is checked by
BMC.
"""

from amaranth.hdl import Elaboratable, Module, Signal

from prifence.formats import PrgResponse
from rtl.response_arbiter import ResponseArbiter

from .env import any_seq, assume, check, cover, hold_reset_low

__all__ = ["ResponseArbiterProperties"]


class ResponseArbiterProperties(Elaboratable):
    """The arbiter with stream-rule inputs and its contract as assertions."""

    def __init__(self, *, check, block=None):
        if check not in ("exact", "fair"):
            raise TypeError(f"check must be 'exact' or 'fair', not {check!r}")
        self.check = check
        self.block = block if block is not None else ResponseArbiter()

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        dut = m.submodules.dut = self.block
        width = PrgResponse.as_shape().size
        o = dut.o
        exact, fair = self.check == "exact", self.check == "fair"
        m.d.comb += o.ready.eq(any_seq(1))
        waiting = {}
        for name in ("auto", "cmd"):
            port = getattr(dut, name)
            m.d.comb += [port.valid.eq(any_seq(1)), port.p.eq(any_seq(width))]
            was_valid = Signal(name=f"{name}_was_stalled")
            was_p = Signal(width, name=f"{name}_held_payload")
            m.d.sync += [was_valid.eq(port.valid & ~port.ready), was_p.eq(port.p)]
            # Stream rule on the inputs: a payload offered stays until accepted.
            assume(m, ~was_valid | (port.valid & (port.p.as_value() == was_p)))
            # Nothing is held inside: an input transfer is an output transfer of
            # that very payload in the same cycle.
            if exact:
                check(m, ~port.ready | o.ready)
                check(m, ~(port.valid & port.ready) | (o.valid & (o.p.as_value() == port.p.as_value())))
            # Fairness: a valid input waits for at most one transfer of the other.
            n = Signal(2, name=f"{name}_passed_over")
            with m.If(port.valid & port.ready | ~port.valid):
                m.d.sync += n.eq(0)
            with m.Elif(o.valid & o.ready):
                m.d.sync += n.eq(n + 1)
            if fair:
                check(m, n <= 1)
            waiting[name] = n
        if exact:
            check(m, o.valid == (dut.auto.valid | dut.cmd.valid))
            check(m, ~(dut.auto.ready & dut.cmd.ready))
            check(m, ~(o.valid & o.ready) | dut.auto.ready | dut.cmd.ready)
        o_stalled = Signal(name="o_was_stalled")
        o_p = Signal(width, name="o_held_payload")
        m.d.sync += [o_stalled.eq(o.valid & ~o.ready), o_p.eq(o.p)]
        if fair:
            # Stream rule on the output.
            check(m, ~o_stalled | (o.valid & (o.p.as_value() == o_p)))
        cover(m, waiting["auto"] == 1)
        cover(m, waiting["cmd"] == 1)
        cover(m, o_stalled & dut.cmd.ready)
        return m

"""PRG response arbiter: one ``prg_resp`` stream shared by two sources (DESIGN.md §1, §4).

Auto-responses of the page-request path and ``ATS.PRGR`` responses of the command
queue leave on the same ``prg_resp`` stream, round-robin, each source in its own
order.  The arbiter holds nothing: a payload is accepted on an input in exactly the
cycle it is accepted on the output, which is what makes the fences of DESIGN.md §3
exact (a response is "accepted on ``prg_resp``" when its own source sees ``ready``).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import PrgResponse

__all__ = ["ResponseArbiter"]


class ResponseArbiter(wiring.Component):
    """Round-robin merge of two :class:`PrgResponse` streams, without buffering.

    Members
    -------
    auto : In(stream.Signature(PrgResponse))
        Auto-responses from the page-request path.
    cmd : In(stream.Signature(PrgResponse))
        ``ATS.PRGR`` responses from the command queue.
    o : Out(stream.Signature(PrgResponse))
        ``prg_resp``.

    Contract
    --------
    * ``o.valid`` is ``auto.valid | cmd.valid``; it never depends combinationally on
      ``o.ready`` (nor does ``o.payload``).
    * An input's ``ready`` is high only in a cycle where that input is selected and
      ``o.ready`` is high, so a transfer on an input is a transfer on ``o`` in the same
      cycle; no payload is ever held inside.
    * Fairness: when both inputs are valid, the one that did not win the last transfer
      wins; a source waits for at most one transfer of the other.
    * Stream rules on ``o``: once ``o`` offers a payload it keeps offering that same
      payload until it is accepted (while ``o`` is stalled the offered input is
      preferred, which locks the selection because a valid input may not withdraw
      its payload).
    * Each input's payloads leave in the order that input presented them.
    """

    def __init__(self):
        super().__init__({
            "auto": In(stream.Signature(PrgResponse)),
            "cmd": In(stream.Signature(PrgResponse)),
            "o": Out(stream.Signature(PrgResponse)),
        })

    def elaborate(self, platform):
        m = Module()

        # ``prefer_cmd``: the command queue wins a tie.  It is set to the loser of
        # each transfer and, while ``o`` is stalled, to the input being offered:
        # that input stays valid (the stream rules), so the selection stays
        # locked on it without a lock register, and the selection is one LUT of
        # registers (both valids and this flag).
        prefer_cmd = Signal()

        pick_cmd = Signal()
        m.d.comb += pick_cmd.eq(self.cmd.valid & (prefer_cmd | ~self.auto.valid))

        # Each input's ``ready`` is its own LUT of ``o.ready``, both valids and
        # the flag (kept nets, so neither is built on a shared ``pick_cmd``):
        # the sources take it at one LUT from flip-flops.  ``auto.ready`` is
        # written as "auto valid and cmd not preferred over it", which is
        # ``~pick_cmd`` whenever auto is valid and 0 otherwise.
        cmd_ready = Signal(attrs={"keep": 1})
        auto_ready = Signal(attrs={"keep": 1})
        # The payload select needs only be right while ``o.valid``: it is
        # ``pick_cmd`` then, as a function of its own (1 with no input valid).
        select_cmd = Signal(attrs={"keep": 1})
        m.d.comb += [
            cmd_ready.eq(self.o.ready & self.cmd.valid & (prefer_cmd | ~self.auto.valid)),
            auto_ready.eq(self.o.ready & self.auto.valid & ~(self.cmd.valid & prefer_cmd)),
            select_cmd.eq(Mux(prefer_cmd, self.cmd.valid, ~self.auto.valid)),
        ]

        m.d.comb += [
            self.o.valid.eq(self.auto.valid | self.cmd.valid),
            self.o.payload.eq(Mux(select_cmd, self.cmd.payload, self.auto.payload)),
            self.cmd.ready.eq(cmd_ready),
            self.auto.ready.eq(auto_ready),
        ]

        with m.If(self.o.valid):
            m.d.sync += prefer_cmd.eq(pick_cmd ^ self.o.ready)

        return m

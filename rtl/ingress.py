# The page-request ingress FIFO (DESIGN.md §1: "page_req_ready is high exactly
# when the ingress FIFO has room").

from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from prifence.formats import PageRequest

from .bus import PD_COUNT_WIDTH

__all__ = ["Ingress"]


class Ingress(wiring.Component):
    """Buffer for page requests arriving on ``page_req``.

    Parameters
    ----------
    depth : int
        FIFO depth (at least 2).

    Members
    -------
    i : In(stream.Signature(PageRequest))
        The ``page_req`` stream.
    o : Out(stream.Signature(PageRequest))
        Requests in arrival order.
    accepted : Out(PD_COUNT_WIDTH)
        Count (modulo 2**PD_COUNT_WIDTH) of requests accepted on ``i`` in
        earlier cycles; a handshake in cycle *t* is counted from cycle *t+1*.

    Contract
    --------
    * ``i.ready`` is high exactly when the FIFO has room; it depends only on
      registers, never on ``i.valid``.  One request is accepted per clock
      while there is room.
    * After reset the FIFO is empty, ``o.valid`` is low and ``accepted`` is 0.
    """

    def __init__(self, *, depth=16):
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer of at least 2, not {depth!r}")
        self.depth = depth
        super().__init__({
            "i": In(stream.Signature(PageRequest)),
            "o": Out(stream.Signature(PageRequest)),
            "accepted": Out(PD_COUNT_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(
            width=PageRequest.as_shape().size, depth=self.depth)
        m.d.comb += [
            buf.w_data.eq(self.i.payload),
            buf.w_en.eq(self.i.valid),
            self.i.ready.eq(buf.w_rdy),
            self.o.payload.eq(buf.r_data),
            self.o.valid.eq(buf.r_rdy),
            buf.r_en.eq(self.o.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.accepted.eq(self.accepted + 1)
        return m

# The page-request ingress FIFO (DESIGN.md §1: "page_req_ready is high exactly
# when the ingress FIFO has room").

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib.memory import Memory
from amaranth.lib import stream, wiring
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
    * ``i.ready`` and ``o.valid`` come straight from flip-flops; a request
      accepted in cycle *t* is offered on ``o`` from cycle *t+2* at the
      earliest.
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
        width = PageRequest.as_shape().size
        # Storage of a power-of-2 size, at least ``depth``: it holds at most
        # depth-1 requests while the output register holds one, and at most one
        # while the output register is empty (it loads the next cycle), so the
        # slot at the write pointer is always free and is written every cycle
        # (only a handshake moves the pointer).
        slots = 1 << (self.depth - 1).bit_length()
        bits = (slots - 1).bit_length()
        m.submodules.storage = storage = Memory(shape=width, depth=slots, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        produce = Signal(bits + 1, name="produce")
        consume = Signal(bits + 1, name="consume")    # next to move to the output register
        consume_next = Signal(bits + 1, name="consume_next", init=1)   # consume + 1
        o_valid = self.o.valid
        # ``i.ready`` is a register: the room of the next cycle, from this
        # cycle's occupancy and handshakes.
        room = Signal(name="room", init=1)
        m.d.comb += self.i.ready.eq(room)
        push = Signal(name="push")
        pop = Signal(name="pop")
        fetch = Signal(name="fetch")
        # The storage holds a request: a register of its own (the fetch, the
        # read enable, is then two gates from flip-flops and ``o.ready``).
        nonempty = Signal(name="nonempty")
        m.d.comb += [
            push.eq(self.i.valid & room),
            pop.eq(o_valid & self.o.ready),
            fetch.eq(nonempty & (~o_valid | self.o.ready)),
            w_port.addr.eq(produce[:bits]), w_port.data.eq(self.i.payload), w_port.en.eq(1),
            r_port.addr.eq(consume[:bits]), r_port.en.eq(fetch),
            self.o.payload.eq(r_port.data),
        ]
        with m.If(push):
            m.d.sync += produce.eq(produce + 1)
        with m.If(fetch):
            m.d.sync += [consume.eq(consume_next), consume_next.eq(consume_next + 1)]
        m.d.sync += nonempty.eq(push | Mux(fetch, produce != consume_next, nonempty))
        # Valid after a fetch, or while not taken.
        m.d.sync += o_valid.eq(nonempty | (o_valid & ~self.o.ready))
        # Occupancy (storage and output register) is depth-1 now: a push
        # without a pop fills the FIFO.  Full now: it stays full without a pop.
        stored = Signal(bits + 1, name="stored")
        m.d.comb += stored.eq(produce - consume)
        last_slot = Signal(name="last_slot")
        m.d.comb += last_slot.eq(Mux(o_valid, stored == self.depth - 2, stored == self.depth - 1))
        m.d.sync += room.eq(~((last_slot & push) | ~room) | pop)
        with m.If(push):
            m.d.sync += self.accepted.eq(self.accepted + 1)
        return m

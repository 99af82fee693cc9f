# A first-in first-out buffer whose output and fetch are cut for timing, shared
# by the page-request path (records on their way to memory, the B order) and
# the fault queue (fault reports).

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["CountedFifo"]


class CountedFifo(wiring.Component):
    """First-in first-out buffer for a user that counts its own entries.

    Storage with a synchronous read port, then an output register
    (``r_data``, ``r_rdy``): the timing of
    :class:`amaranth.lib.fifo.SyncFIFOBuffered` (an entry written in one cycle
    is at the output two cycles later, one entry leaves per cycle).

    Parameters
    ----------
    width : int
        Bits per entry.
    depth : int
        Entries, at least 2 (any number, not only powers of 2).

    Members
    -------
    w_data : In(width)
    w_en : In(1)
        Writes ``w_data``.  There is no ``w_rdy``: the user never holds more
        than ``depth`` entries in the buffer (output register included),
        which it knows from its own count.
    r_data : Out(width)
    r_rdy : Out(1)
        The output register; a register, like ``r_data``.
    r_en : In(1)
        Takes the entry in ``r_data`` (only while ``r_rdy``).

    Contract
    --------
    * The storage is written at its free slot in every cycle (``w_en`` moves
      the write pointer only), so ``w_en`` reaches no memory enable.  The slot
      is free: with the output register empty the storage holds at most one
      entry (it is fetched in the next cycle), with it full at most
      ``depth - 1``.  The slot being read is never the slot being written, so
      the read port's behaviour on a collision does not matter.
    * Whether the storage holds an entry not yet fetched is a flip-flop
      worked out a cycle ahead (from the write, the fetch and whether exactly
      one entry is held), so the fetch, the read pointer's and the output
      register's enables are one LUT from flip-flops and ``r_en``.
    """

    def __init__(self, *, width, depth):
        if not isinstance(width, int) or width < 1:
            raise TypeError(f"width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer of at least 2, not {depth!r}")
        self.width, self.depth = width, depth
        super().__init__({
            "w_data": In(width), "w_en": In(1),
            "r_data": Out(width), "r_rdy": Out(1), "r_en": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        m.submodules.storage = storage = Memory(shape=self.width, depth=depth, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        produce = Signal(range(depth), name="produce")
        consume = Signal(range(depth), name="consume")
        consume_inc = Signal(range(depth), name="consume_inc", init=1)   # consume + 1, kept
        # The storage holds an entry not yet fetched: a flip-flop.  Its next
        # value needs the write, the fetch and whether exactly one entry is
        # held (a compare of flip-flops).
        avail = Signal(name="avail")
        one = Signal(name="one")
        fetch = Signal(name="fetch")

        def incr(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1)

        m.d.comb += [
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(1),
            one.eq(produce == consume_inc),
            fetch.eq(avail & (~self.r_rdy | self.r_en)),
            r_port.addr.eq(consume), r_port.en.eq(fetch),
            self.r_data.eq(r_port.data),
        ]
        with m.If(self.w_en):
            m.d.sync += produce.eq(incr(produce))
        with m.If(fetch):
            m.d.sync += [consume.eq(consume_inc), consume_inc.eq(incr(consume_inc))]
        # A write leaves an entry (a write beside a fetch needs one held);
        # without one, a fetch of the only entry empties the storage.
        m.d.sync += avail.eq(self.w_en | (avail & ~(one & fetch)))
        m.d.sync += self.r_rdy.eq(fetch | (self.r_rdy & ~self.r_en))
        return m

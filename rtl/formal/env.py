"""Building blocks shared by the formal harnesses (``rtl/formal/*.py``).

A harness is an :class:`amaranth.hdl.Elaboratable` with no ports: every input of
the block under proof is driven from ``AnySeq`` (a fresh value each cycle) or
``AnyConst`` (one value for the whole trace), narrowed by ``Assume`` to what the
block's environment may do (DESIGN §1 and ``rtl/bus.py``: a memory answers only
requests it was given, per client in order; software follows the queue rules of
DESIGN §2).  Properties are ``Assert`` cells and their antecedents ``Cover``
cells.  The state at the first cycle is the reset state (every register's
``init``); ``rst`` is held low.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Mux, ResetSignal, Signal

__all__ = [
    "any_seq", "any_const", "hold_reset_low", "check", "cover", "assume",
    "ShadowFifo", "modular_ge",
]


def any_seq(width):
    """A free input: a fresh unconstrained value every cycle."""
    return AnySeq(width)


def any_const(width):
    """A free constant: one unconstrained value for the whole trace."""
    return AnyConst(width)


def hold_reset_low(m):
    """The trace starts in the reset state (the registers' ``init``) and is never reset again."""
    m.d.comb += Assume(ResetSignal() == 0)


def check(m, test):
    """An assertion, reported by the prover at the caller's source line."""
    m.d.comb += Assert(test, src_loc_at=1)


def cover(m, test):
    """A cover point (reachability of a property's antecedent), at the caller's line."""
    m.d.comb += Cover(test, src_loc_at=1)


def assume(m, test):
    """An environment assumption, at the caller's line."""
    m.d.comb += Assume(test, src_loc_at=1)


def modular_ge(a, b, width):
    """``a`` is at or after ``b`` on a counter of ``width`` bits (within half a wrap)."""
    return ~(a - b)[width - 1]


class ShadowFifo:
    """A small FIFO of harness bookkeeping (no block logic), written and read in
    the same module.  ``push(m, cond, value)`` and ``pop(m, cond)`` take effect at
    the clock edge; ``head`` is the oldest entry, ``at(k)`` entry ``k`` places
    behind the head.  Overflow and underflow are harness assertions, so a
    harness never silently loses track of a transaction."""

    def __init__(self, width, depth, name):
        self.depth = depth
        self.width = width
        self.entries = [Signal(width, name=f"{name}_{k}") for k in range(depth)]
        self.count = Signal(range(depth + 1), name=f"{name}_count")
        self._push = Signal(name=f"{name}_push")
        self._pop = Signal(name=f"{name}_pop")
        self._value = Signal(width, name=f"{name}_in")

    @property
    def head(self):
        return self.entries[0]

    def push(self, m, cond, value):
        m.d.comb += [self._push.eq(cond), self._value.eq(value)]

    def pop(self, m, cond):
        m.d.comb += self._pop.eq(cond)

    def elaborate_into(self, m):
        e, n = self.entries, self.depth
        m.d.comb += Assert(~(self._pop & (self.count == 0)), src_loc_at=1)
        m.d.comb += Assert(~(self._push & ~self._pop & (self.count == n)), src_loc_at=1)
        # Shift out at the head on pop; write the new value at the first free place.
        after = Signal(range(n + 1), name=None)
        m.d.comb += after.eq(self.count - self._pop)
        for k in range(n):
            shifted = e[k + 1] if k + 1 < n else e[k]
            with m.If(self._push & (after == k)):
                m.d.sync += e[k].eq(self._value)
            with m.Elif(self._pop):
                m.d.sync += e[k].eq(shifted)
        m.d.sync += self.count.eq(self.count + self._push - self._pop)


def software_queue(m, regs, *, addr_width):
    """Free software side of a queue's register port, as the register file
    gives it: a ring of 2 or 4 entries (``log2sz_1``), a fixed base, and
    xqen toggled only while the queue is not busy (xqen = xqon: a csr write
    while busy is ignored whole, DESIGN §2 "Timing").  Drives ``regs.enable``,
    ``regs.base_ppn`` and ``regs.log2sz_1``; returns ``(mask, base, enable,
    enabling)`` where ``enabling`` is the cycle xqen goes 0→1 (the error bits
    clear with it)."""
    log2sz_1 = any_const(1)
    mask = Signal(2, name="sw_mask")
    m.d.comb += mask.eq(Mux(log2sz_1, 3, 1))
    base = any_const(addr_width - 12)
    enable = Signal(name="sw_enable")
    toggle = any_seq(1) & (enable == regs.on)
    with m.If(toggle):
        m.d.sync += enable.eq(~enable)
    m.d.comb += [regs.enable.eq(enable), regs.base_ppn.eq(base), regs.log2sz_1.eq(log2sz_1)]
    return mask, base, enable, toggle & ~enable

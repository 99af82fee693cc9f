"""Deliberately broken variants of the blocks, for tests only (never shipped).

Each variant wraps the shipped block and breaks it at its ports, so it keeps
working whatever the block's inside looks like: :func:`broken` builds a
component with the block's own signature whose ports pass straight through,
except the ones a small ``mutate`` function drives.  ``rtl/formal/registry.py``
pairs each variant with the property it must violate; ``tests/formal`` and
``python -m prifence.formal --defects`` show the prover finds the
counterexample, so no property is vacuous.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from prifence.formats import ResponseCode

__all__ = ["broken"]


class _Broken(wiring.Component):
    def __init__(self, inner, mutate, driven):
        self.inner, self._mutate, self._driven = inner, mutate, frozenset(driven)
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        inner_members = {path: value for path, _, value in self.inner.signature.flatten(self.inner)}
        for path, member, outer in self.signature.flatten(self):
            if path in self._driven:
                continue
            inner = inner_members[path]
            m.d.comb += (inner.eq(outer) if member.flow == In else outer.eq(inner))
        self._mutate(m, self, self.inner)
        return m


def broken(inner, driven, mutate):
    """``inner`` with the ports at ``driven`` (member paths, e.g.
    ``("rec_mem", "aw", "payload")``) connected by ``mutate(m, outer, inner)``
    instead of straight through."""
    return _Broken(inner, mutate, driven)


# --- page-request queue ----------------------------------------------------------

def pq_stale_record(make_block):
    """Every second record write carries the data of the previous record."""
    def mutate(m, o, i):
        last = Signal.like(i.rec_mem.w.payload.data, name="last_dw")
        prev = Signal.like(i.rec_mem.w.payload.data, name="prev_dw")
        odd = Signal(name="odd_record")
        w = i.rec_mem.w
        fire = w.valid & w.ready
        beat1 = w.payload.last
        with m.If(fire):
            m.d.sync += [last.eq(w.payload.data)]
            with m.If(beat1):
                m.d.sync += [odd.eq(~odd), prev.eq(w.payload.data)]
        m.d.comb += [o.rec_mem.w.payload.eq(w.payload),
                     o.rec_mem.w.payload.data.eq(Mux(odd & beat1, prev, w.payload.data))]
    return broken(make_block(), {("rec_mem", "w", "payload")}, mutate)


def pq_fixed_slot(make_block):
    """Every record goes to entry 0 of the ring."""
    def mutate(m, o, i):
        addr = i.rec_mem.aw.payload.addr
        m.d.comb += [o.rec_mem.aw.payload.eq(i.rec_mem.aw.payload),
                     o.rec_mem.aw.payload.addr.eq(addr & ~0xFF0)]
    return broken(make_block(), {("rec_mem", "aw", "payload")}, mutate)


def pq_ack_at_issue(make_block):
    """A record write counts as acknowledged OKAY once its address is accepted."""
    def mutate(m, o, i):
        aw = o.rec_mem.aw
        m.d.comb += [i.rec_mem.b.valid.eq(aw.valid & aw.ready), i.rec_mem.b.payload.resp.eq(0),
                     o.rec_mem.b.ready.eq(1)]
    return broken(make_block(), {("rec_mem", "b", "valid"), ("rec_mem", "b", "payload"),
                                 ("rec_mem", "b", "ready")}, mutate)


def pq_ignores_stop_bits(make_block):
    """pqmf and pqof do not stop the queue."""
    def mutate(m, o, i):
        m.d.comb += [i.regs.status.pqmf.eq(0), i.regs.status.pqof.eq(0)]
    return broken(make_block(), {("regs", "status")}, mutate)


def repeat_response(make_block):
    """Each response on ``resp`` is offered, and accepted, twice."""
    def mutate(m, o, i):
        again = Signal(name="again")
        held = Signal.like(i.resp.payload, name="held")
        with m.If(again):
            m.d.comb += [o.resp.valid.eq(1), o.resp.payload.eq(held), i.resp.ready.eq(0)]
            with m.If(o.resp.ready):
                m.d.sync += again.eq(0)
        with m.Else():
            m.d.comb += [o.resp.valid.eq(i.resp.valid), o.resp.payload.eq(i.resp.payload),
                         i.resp.ready.eq(o.resp.ready)]
            with m.If(i.resp.valid & o.resp.ready):
                m.d.sync += [again.eq(1), held.eq(i.resp.payload)]
    return broken(make_block(), {("resp", "valid"), ("resp", "payload"), ("resp", "ready")}, mutate)


# --- command queue -------------------------------------------------------------------

def cq_buffered_response(make_block):
    """A one-entry buffer after ``resp``: the block sees its response accepted
    when the buffer takes it, before ``prg_resp`` does."""
    def mutate(m, o, i):
        full = Signal(name="buffer_full")
        buf = Signal.like(i.resp.payload, name="buffer")
        take = i.resp.valid & i.resp.ready
        m.d.comb += [i.resp.ready.eq(~full | o.resp.ready), o.resp.valid.eq(full),
                     o.resp.payload.eq(buf)]
        with m.If(take):
            m.d.sync += [full.eq(1), buf.eq(i.resp.payload)]
        with m.Elif(o.resp.ready):
            m.d.sync += full.eq(0)
    return broken(make_block(), {("resp", "valid"), ("resp", "payload"), ("resp", "ready")}, mutate)


def cq_retired_off_by_one(make_block):
    """IOFENCE.PD compares against one more retired request than there are."""
    def mutate(m, o, i):
        m.d.comb += i.pr_retired.eq(o.pr_retired + 1)
    return broken(make_block(), {("pr_retired",)}, mutate)


def cq_head_leaves_culprit(make_block):
    """cqh moves one past the command that set cmd_ill or cqmf."""
    def mutate(m, o, i):
        stopped = o.regs.status.cmd_ill | o.regs.status.cqmf
        mask = Signal(16, name="mask")
        m.d.comb += [mask.eq((Const(2, 17) << o.regs.log2sz_1) - 1),
                     o.regs.hw_index.eq(Mux(stopped, (i.regs.hw_index + 1) & mask, i.regs.hw_index))]
    return broken(make_block(), {("regs", "hw_index")}, mutate)


def cq_inval_not_awaited(make_block):
    """The block sees every invalidation done at once; the request is held for
    the lookup on its own."""
    def mutate(m, o, i):
        pending = Signal(name="pending")
        all_, did = Signal(name="held_all"), Signal(7, name="held_did")
        with m.If(i.inval.valid):
            m.d.sync += [all_.eq(i.inval.all), did.eq(i.inval.did)]
        m.d.comb += [i.inval.ready.eq(1),
                     o.inval.valid.eq(i.inval.valid | pending),
                     o.inval.all.eq(Mux(pending, all_, i.inval.all)),
                     o.inval.did.eq(Mux(pending, did, i.inval.did))]
        with m.If(o.inval.valid & o.inval.ready):
            m.d.sync += pending.eq(0)
        with m.Elif(i.inval.valid):
            m.d.sync += pending.eq(1)
    return broken(make_block(), {("inval", "valid"), ("inval", "all"), ("inval", "did"),
                                 ("inval", "ready")}, mutate)


# --- context lookup -------------------------------------------------------------------

def lookup_ignores_inval(make_block):
    """Invalidations are acknowledged and ignored."""
    def mutate(m, o, i):
        m.d.comb += [i.inval.valid.eq(0), o.inval.ready.eq(1)]
    return broken(make_block(), {("inval", "valid"), ("inval", "ready")}, mutate)


# --- response arbiter -------------------------------------------------------------------

def arbiter_accepts_both(make_block):
    """The command input is told ``ready`` whenever the output is ready."""
    def mutate(m, o, i):
        m.d.comb += o.cmd.ready.eq(o.o.ready)
    return broken(make_block(), {("cmd", "ready")}, mutate)


def arbiter_prefers_auto(make_block):
    """The command input is offered only while no auto-response waits."""
    def mutate(m, o, i):
        m.d.comb += [i.cmd.valid.eq(o.cmd.valid & ~o.auto.valid)]
    return broken(make_block(), {("cmd", "valid")}, mutate)

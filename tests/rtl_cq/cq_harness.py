"""Simulation environment for the command queue and the PRG response arbiter.

:class:`CqSystem` wires a :class:`CommandQueue` to a :class:`ResponseArbiter` and to a
small stand-in for the register file's cqcsr status bits (set pulses from the
queue, W1C from software, the set winning, cleared on cqen 0→1 as DESIGN §2 says).

:class:`Environment` is one simulator process that plays, cycle by cycle, everything
around the hardware: a memory behind the fetch and store client ports (latency,
gaps, per-address fault injection), the ``prg_resp`` sink (back-pressure), the
page-request path's auto-response source, and the context lookup answering
invalidations.  It records every transfer with its cycle and checks the stream rules
(a valid payload is held, unchanged, until accepted) on every output it watches.

:class:`Software` is the testbench side: it writes commands into the ring, moves
cqt, toggles cqen and clears status bits, and waits on conditions with bounds that
fail loudly.

The command encoders and :func:`model_command` (the Python model of DESIGN §3's
command semantics) are written from the layouts of :mod:`prifence.formats`
independently of the RTL's decoder.
"""

import random
from collections import deque
from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.sim import Simulator

from prifence.formats import (
    COMMAND_BYTES, DDT_INDEX_BITS, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD,
    FUNC3_PRGR, PAGE_SHIFT, CommandHeader, InvalDdtCmd, IofenceCmd, Opcode, PrgResponse,
    PrgrCmd, codec,
)
from rtl.bus import AXI_OKAY, AXI_SLVERR, PD_COUNT_WIDTH, queue_status_names
from rtl.command_queue import CommandQueue
from rtl.response_arbiter import ResponseArbiter

STATUS = queue_status_names("cq")
RESP = codec(PrgResponse)
HDR = codec(CommandHeader)
FENCE = codec(IofenceCmd)
INVAL = codec(InvalDdtCmd)
PRGR = codec(PrgrCmd)
PD_MOD = 1 << PD_COUNT_WIDTH


# --- command encoding and the reference model -----------------------------------------

def prgr(*, did, prgi, code, pv=0, pid=0, dsv=None, ignored=0):
    """An ``ATS.PRGR`` for device ``did`` (RID | segment << 16).  ``dsv`` defaults to
    1 exactly when the segment is nonzero; ``ignored`` fills the ignored dw1 bits."""
    rid, dseg = did & 0xFFFF, did >> 16
    if dsv is None:
        dsv = int(dseg != 0)
    word = PRGR.pack(opcode=Opcode.ATS, func3=FUNC3_PRGR, pid=pid, pv=pv, dsv=dsv,
                     rid=rid, dseg=dseg, prgi=prgi, code=code)
    for name in PRGR.fields:
        if name.startswith("_ign"):
            off, width = PRGR.fields[name]
            word |= (ignored & ((1 << width) - 1)) << off
    return word


def iofence(*, pd=False, av=0, wsi=0, pr=0, pw=0, data=0, addr=0):
    """``IOFENCE.C`` (or ``IOFENCE.PD`` with ``pd=True``) storing ``data`` at byte
    address ``addr`` (4-byte aligned) when ``av``."""
    if addr & 3:
        raise ValueError(f"IOFENCE address must be 4-byte aligned, not {addr:#x}")
    opcode, func3 = ((Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD) if pd
                     else (Opcode.IOFENCE_C, FUNC3_IOFENCE_C))
    return FENCE.pack(opcode=opcode, func3=func3, av=av, wsi=wsi, pr=pr, pw=pw,
                      data=data, addr=addr >> 2)


def inval_ddt(*, dv, did=0, pid=0):
    """``IODIR.INVAL_DDT``: one device context (``dv=1``) or all."""
    return INVAL.pack(opcode=Opcode.IODIR, func3=FUNC3_INVAL_DDT, dv=dv, did=did, pid=pid)


@dataclass(frozen=True)
class ModelCommand:
    """What DESIGN §3 says a command does."""
    kind: str                    # "prgr", "fence_c", "fence_pd", "inval", "illegal"
    response: dict = None        # prgr: the prg_resp payload
    av: int = 0
    wsi: int = 0
    data: int = 0
    addr: int = 0                # fence: the AV store's byte address
    all: int = 0                 # inval
    did: int = 0


def model_command(word, *, addr_width=56):
    """Decode one command per DESIGN §3 (the reference model of the benches)."""
    h = HDR.unpack(word)
    op, f3 = h["opcode"], h["func3"]
    if (op, f3) in ((Opcode.IOFENCE_C, FUNC3_IOFENCE_C), (Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD)):
        f = FENCE.unpack(word)
        if word & FENCE.reserved_mask or (f["addr"] << 2) >> addr_width:
            return ModelCommand("illegal")
        kind = "fence_c" if op == Opcode.IOFENCE_C else "fence_pd"
        return ModelCommand(kind, av=f["av"], wsi=f["wsi"], data=f["data"], addr=f["addr"] << 2)
    if (op, f3) == (Opcode.IODIR, FUNC3_INVAL_DDT):
        f = INVAL.unpack(word)
        if word & INVAL.reserved_mask or f["pid"] or (f["dv"] and f["did"] >> DDT_INDEX_BITS):
            return ModelCommand("illegal")
        return ModelCommand("inval", all=1 - f["dv"], did=f["did"] & ((1 << DDT_INDEX_BITS) - 1) if f["dv"] else None)
    if (op, f3) == (Opcode.ATS, FUNC3_PRGR):
        if word & PRGR.reserved_mask:
            return ModelCommand("illegal")
        f = PRGR.unpack(word)
        did = f["rid"] | ((f["dseg"] << 16) if f["dsv"] else 0)
        return ModelCommand("prgr", response=dict(
            did=did, pv=f["pv"], pid=f["pid"] if f["pv"] else 0, prgi=f["prgi"], code=f["code"]))
    return ModelCommand("illegal")


# --- the design under test ------------------------------------------------------------

class CqSystem(Elaboratable):
    """CommandQueue + ResponseArbiter + a cqcsr status-bit stand-in."""

    def __init__(self, **cq_args):
        self.cq = CommandQueue(**cq_args)
        self.arb = ResponseArbiter()
        layout = data.StructLayout({name: 1 for name in STATUS})
        self.enable = Signal()
        self.base_ppn = Signal(44)
        self.log2sz_1 = Signal(5)
        self.sw_index = Signal(32)
        self.status = Signal(layout)
        self.w1c = Signal(layout)

    def elaborate(self, platform):
        m = Module()
        m.submodules.cq = cq = self.cq
        m.submodules.arb = arb = self.arb
        wiring.connect(m, cq.resp, arb.cmd)
        enable_q = Signal()
        m.d.sync += enable_q.eq(self.enable)
        rise = self.enable & ~enable_q
        m.d.comb += [
            cq.regs.enable.eq(self.enable),
            cq.regs.base_ppn.eq(self.base_ppn),
            cq.regs.log2sz_1.eq(self.log2sz_1),
            cq.regs.sw_index.eq(self.sw_index),
            cq.regs.status.eq(self.status),
        ]
        kept = Value.cast(self.status) & ~Value.cast(self.w1c)
        m.d.sync += self.status.eq(Mux(rise, 0, kept) | Value.cast(cq.regs.set_status))
        return m


# --- the environment -------------------------------------------------------------------

@dataclass
class Transfer:
    cycle: int
    source: str                  # "cmd" or "auto"
    payload: dict


@dataclass
class Store:
    cycle: int                   # cycle the AW was accepted
    addr: int
    data: int
    strb: int
    size: int
    length: int
    resp: int = AXI_OKAY
    b_cycle: int = None


@dataclass
class Policy:
    """Timing of the environment; every choice draws from ``rng``."""
    read_latency: int = 1        # cycles from AR acceptance to the first R beat
    write_latency: int = 1       # cycles from AW+W acceptance to B
    r_gap: float = 0.0           # chance of a cycle without an R beat
    ar_stall: float = 0.0        # chance that AR is not ready in a cycle
    aw_stall: float = 0.0
    w_stall: float = 0.0
    sink_stall: float = 0.0      # chance that prg_resp is not ready in a cycle
    auto_gap: float = 0.0        # chance that a queued auto-response is held back
    inval_delay: int = 1         # cycles inval.valid is held before ready


class Environment:
    """Memory, ``prg_resp`` sink, auto-response source and invalidation responder."""

    def __init__(self, system, *, policy=None, rng=None, answer_inval=True):
        self.sys = system
        self.answer_inval = answer_inval       # False: something in ``system`` answers
        self.cq, self.arb = system.cq, system.arb
        self.policy = policy or Policy()
        self.rng = rng or random.Random(0)
        self.bytes_per_beat = self.cq.data_width // 8
        self.mem = {}                            # byte address -> byte
        self.read_faults = set()                 # byte addresses; a beat covering one -> SLVERR
        self.write_faults = set()
        self.cycle = 0
        self.sink_blocked = False                # hard stall of prg_resp (tests toggle it)
        self.sink_ready_fn = None                # optional cycle -> bool override
        self.auto_queue = deque()                # auto-responses waiting to be offered
        self.transfers = []                      # accepted on prg_resp
        self.fetches = []                        # (cycle, addr, len, size) of accepted ARs
        self.read_beats = []                     # (cycle, addr, resp) of R beats sent
        self.stores = []
        self.invals = []                         # (cycle, all, did) at handshake
        self.heads = [(0, 0)]                    # (cycle, cqh) whenever cqh changes
        self.pulses = []                         # (cycle, status name)
        self.on_trace = []                       # (cycle, cqon) on change
        self._r_queue = deque()                  # (ready cycle, data, resp, last, addr)
        self._aw_queue, self._w_queue = deque(), deque()
        self._b_queue = deque()                  # (cycle due, Store)
        self._inval_wait = 0
        self._held = {}                          # stream name -> payload offered last cycle
        self._hooks = []
        self.deadline = 1_000_000

    # memory access for the tests (little-endian)
    def write(self, addr, value, nbytes):
        for i in range(nbytes):
            self.mem[addr + i] = (value >> (8 * i)) & 0xFF

    def read(self, addr, nbytes):
        return sum(self.mem.get(addr + i, 0) << (8 * i) for i in range(nbytes))

    def every_cycle(self, hook):
        """Call ``hook(env, ctx)`` at every clock edge, after the environment recorded
        it; what the hook sets holds in cycle ``env.cycle``."""
        self._hooks.append(hook)

    def _beat_faults(self, addr, faults):
        return any(addr <= f < addr + self.bytes_per_beat for f in faults)

    def _check_held(self, name, valid, ready, payload):
        """Stream rule: a payload offered and not taken is offered again, unchanged."""
        prev = self._held.get(name)
        if prev is not None:
            assert valid, f"cycle {self.cycle}: {name}.valid dropped before ready"
            assert payload == prev, (
                f"cycle {self.cycle}: {name} payload changed while stalled "
                f"({prev:#x} -> {payload:#x})")
        self._held[name] = payload if (valid and not ready) else None

    def signals(self):
        cq, arb = self.cq, self.arb
        return [
            cq.fetch.ar.valid, Value.cast(cq.fetch.ar.payload), cq.fetch.r.ready,
            cq.store.aw.valid, Value.cast(cq.store.aw.payload),
            cq.store.w.valid, Value.cast(cq.store.w.payload), cq.store.b.ready,
            arb.o.valid, Value.cast(arb.o.payload),
            arb.cmd.valid, arb.cmd.ready, Value.cast(arb.cmd.payload),
            arb.auto.valid, arb.auto.ready,
            cq.inval.valid, cq.inval.all, cq.inval.did, cq.inval.ready,
            cq.regs.hw_index, Value.cast(cq.regs.set_status), cq.regs.on,
        ]

    async def process(self, ctx):
        cq, arb, p, rng = self.cq, self.arb, self.policy, self.rng
        ar_lay = data.Layout.cast(cq.fetch.ar.payload.shape())
        aw_lay = data.Layout.cast(cq.store.aw.payload.shape())
        w_lay = data.Layout.cast(cq.store.w.payload.shape())
        status_names = list(STATUS)
        # What this process drives, as offered during the cycle that ends at the edge.
        ar_ready = aw_ready = w_ready = o_ready = 0
        r_offer = b_offer = auto_offer = None
        inval_ready = 0
        last_head, last_on = 0, 0

        def field(word, lay, name):
            f = lay[name]
            return (word >> f.offset) & ((1 << f.width) - 1)

        async for _, _, *s in ctx.tick().sample(*self.signals()):
            (ar_valid, ar_p, r_ready, aw_valid, aw_p, w_valid, w_p, b_ready,
             o_valid, o_p, cmd_valid, cmd_ready, cmd_p, auto_valid, auto_ready,
             inval_valid, inval_all, inval_did, inval_ready_s, head, set_status, on) = s
            now = self.cycle

            # -- checks of the hardware's outputs
            self._check_held("fetch.ar", ar_valid, ar_ready, ar_p)
            self._check_held("store.aw", aw_valid, aw_ready, aw_p)
            self._check_held("store.w", w_valid, w_ready, w_p)
            self._check_held("prg_resp", o_valid, o_ready, o_p)
            self._check_held("inval", inval_valid, inval_ready_s, (inval_all << 8) | inval_did)
            if r_offer is not None:
                assert r_ready, f"cycle {now}: fetch.r.ready low with a fetch outstanding"
            if b_offer is not None:
                assert b_ready, f"cycle {now}: store.b.ready low with a store outstanding"

            # -- what happened at this edge
            if ar_valid and ar_ready:
                addr, length, size = (field(ar_p, ar_lay, "addr"), field(ar_p, ar_lay, "len"),
                                      field(ar_p, ar_lay, "size"))
                assert 1 << size == self.bytes_per_beat, f"fetch size {size}"
                assert (length + 1) * self.bytes_per_beat == COMMAND_BYTES, f"fetch len {length}"
                self.fetches.append((now, addr, length, size))
                for i in range(length + 1):
                    a = addr + i * self.bytes_per_beat
                    self._r_queue.append((now + p.read_latency + i, self.read(a, self.bytes_per_beat),
                                          AXI_SLVERR if self._beat_faults(a, self.read_faults) else AXI_OKAY,
                                          int(i == length), a))
            if r_offer is not None:
                self.read_beats.append((now, r_offer[4], r_offer[2]))
                self._r_queue.popleft()
            if aw_valid and aw_ready:
                self._aw_queue.append((now, aw_p))
            if w_valid and w_ready:
                self._w_queue.append(w_p)
            while self._aw_queue and self._w_queue:
                t, awp = self._aw_queue.popleft()
                wp = self._w_queue.popleft()
                st = Store(cycle=t, addr=field(awp, aw_lay, "addr"), size=field(awp, aw_lay, "size"),
                           length=field(awp, aw_lay, "len"), data=field(wp, w_lay, "data"),
                           strb=field(wp, w_lay, "strb"))
                assert field(wp, w_lay, "last") == 1
                beat_base = st.addr & ~(self.bytes_per_beat - 1)
                st.resp = AXI_SLVERR if self._beat_faults(beat_base, self.write_faults) else AXI_OKAY
                self.stores.append(st)
                self._b_queue.append((now + p.write_latency, st))
            if b_offer is not None:
                st = self._b_queue.popleft()[1]
                st.b_cycle = now
                if st.resp == AXI_OKAY:
                    beat_base = st.addr & ~(self.bytes_per_beat - 1)
                    for i in range(self.bytes_per_beat):
                        if st.strb >> i & 1:
                            self.mem[beat_base + i] = (st.data >> (8 * i)) & 0xFF
            if o_valid and o_ready:
                src = "cmd" if (cmd_valid and cmd_ready) else "auto"
                assert (cmd_valid and cmd_ready) != (auto_valid and auto_ready), \
                    f"cycle {now}: prg_resp transfer is not exactly one input's transfer"
                self.transfers.append(Transfer(now, src, RESP.unpack(o_p)))
                if src == "cmd":
                    assert o_p == cmd_p
                else:
                    assert o_p == auto_offer
                    self.auto_queue.popleft()
            else:
                assert not (cmd_valid and cmd_ready) and not (auto_valid and auto_ready), \
                    f"cycle {now}: an input transferred without prg_resp transferring"
            if inval_valid and inval_ready_s:
                self.invals.append((now, inval_all, inval_did))
            if head != last_head:
                self.heads.append((now, head))
                last_head = head
            if on != last_on:
                self.on_trace.append((now, on))
                last_on = on
            for i, name in enumerate(status_names):
                if set_status >> i & 1:
                    self.pulses.append((now, name))

            self.cycle = now = now + 1
            if now > self.deadline:
                raise AssertionError(f"simulation ran past {self.deadline} cycles")
            for hook in self._hooks:
                hook(self, ctx)

            # -- what the environment offers in the next cycle
            ar_ready = int(rng.random() >= p.ar_stall)
            aw_ready = int(rng.random() >= p.aw_stall)
            w_ready = int(rng.random() >= p.w_stall)
            r_offer = None
            if self._r_queue and self._r_queue[0][0] <= now and rng.random() >= p.r_gap:
                r_offer = self._r_queue[0]
            b_offer = self._b_queue[0] if self._b_queue and self._b_queue[0][0] <= now else None
            if self.sink_ready_fn is not None:
                o_ready = int(bool(self.sink_ready_fn(now)))
            else:
                o_ready = int(not self.sink_blocked and rng.random() >= p.sink_stall)
            if auto_offer is None or not (auto_valid and not auto_ready):
                # A new offer may be withheld; an offer not yet taken stays.
                auto_offer = (self.auto_queue[0] if self.auto_queue and rng.random() >= p.auto_gap
                              else None)
            if inval_valid and inval_ready_s:
                self._inval_wait = 0
            elif inval_valid:
                self._inval_wait += 1
            inval_ready = int(bool(inval_valid) and not inval_ready
                              and self._inval_wait >= p.inval_delay)

            ctx.set(cq.fetch.ar.ready, ar_ready)
            ctx.set(cq.store.aw.ready, aw_ready)
            ctx.set(cq.store.w.ready, w_ready)
            ctx.set(cq.fetch.r.valid, r_offer is not None)
            if r_offer is not None:
                ctx.set(cq.fetch.r.payload.data, r_offer[1])
                ctx.set(cq.fetch.r.payload.resp, r_offer[2])
                ctx.set(cq.fetch.r.payload.last, r_offer[3])
            ctx.set(cq.store.b.valid, b_offer is not None)
            if b_offer is not None:
                ctx.set(cq.store.b.payload.resp, b_offer[1].resp)
            ctx.set(arb.o.ready, o_ready)
            ctx.set(arb.auto.valid, auto_offer is not None)
            if auto_offer is not None:
                ctx.set(Value.cast(arb.auto.payload), auto_offer)
            if self.answer_inval:
                ctx.set(cq.inval.ready, inval_ready)

    # -- views of the record
    def responses(self, source):
        return [t.payload for t in self.transfers if t.source == source]

    def head_at(self, cycle):
        """cqh as seen in ``cycle``."""
        value = 0
        for c, h in self.heads:
            if c <= cycle:
                value = h
        return value

    def pulse_cycles(self, name):
        return [c for c, n in self.pulses if n == name]


# --- software ----------------------------------------------------------------------------

class Hang(AssertionError):
    """A bounded wait ran out."""


class Software:
    """The driver's side of the command queue, for testbenches."""

    def __init__(self, ctx, system, env, *, base_ppn=0x80, log2sz_1=3):
        self.ctx, self.sys, self.env = ctx, system, env
        self.base_ppn, self.log2sz_1 = base_ppn, log2sz_1
        self.entries = 2 << log2sz_1
        self.tail = 0
        self.submitted = []          # every command word in queue order (index = position)

    @property
    def base(self):
        return self.base_ppn << PAGE_SHIFT

    def slot_addr(self, index):
        return self.base + (index % self.entries) * COMMAND_BYTES

    async def tick(self, n=1):
        for _ in range(n):
            await self.ctx.tick()

    async def wait(self, cond, *, bound, what):
        for _ in range(bound):
            if cond():
                return
            await self.ctx.tick()
        if cond():
            return
        raise Hang(f"cycle {self.env.cycle}: waited {bound} cycles for {what}")

    @property
    def head(self):
        return self.ctx.get(self.sys.cq.regs.hw_index)

    @property
    def on(self):
        return self.ctx.get(self.sys.cq.regs.on)

    def status(self, name):
        return getattr(self.ctx.get(self.sys.status), name)

    async def enable(self):
        assert not self.on, "cqcsr write while busy would be ignored"
        self.ctx.set(self.sys.base_ppn, self.base_ppn)
        self.ctx.set(self.sys.log2sz_1, self.log2sz_1)
        self.ctx.set(self.sys.enable, 1)
        self.tail = 0
        self.ctx.set(self.sys.sw_index, 0)
        await self.tick()
        await self.wait(lambda: self.on, bound=4, what="cqon after cqen")

    async def disable(self, *, bound=1000):
        self.ctx.set(self.sys.enable, 0)
        await self.tick()
        await self.wait(lambda: not self.on, bound=bound, what="cqon to drop after disable")

    def write_slot(self, index, word):
        self.env.write(self.slot_addr(index), word, COMMAND_BYTES)

    def post(self, *words):
        """Write commands at cqt and move cqt past them (no wait)."""
        for word in words:
            if (self.tail + 1) % self.entries == self.head:
                raise AssertionError(f"posting to a full command queue (cqt={self.tail}, cqh={self.head})")
            self.write_slot(self.tail, word)
            self.submitted.append(word)
            self.tail = (self.tail + 1) % self.entries
        self.ctx.set(self.sys.sw_index, self.tail)

    async def submit(self, *words, bound=2000):
        """Post commands, waiting for room in the ring as a driver would."""
        for word in words:
            await self.wait(lambda: (self.tail + 1) % self.entries != self.head,
                            bound=bound, what="room in the command queue")
            self.post(word)

    async def wait_head(self, index, *, bound=2000):
        await self.wait(lambda: self.head == index % self.entries, bound=bound,
                        what=f"cqh to reach {index % self.entries}")

    async def wait_idle(self, *, bound=5000):
        """Wait until cqh reached cqt and every response left (prg_resp accepted it)."""
        cq = self.sys.cq
        await self.wait(lambda: (self.head == self.tail and not self.ctx.get(cq.resp.valid)
                                 and not self.ctx.get(cq.inval.valid)),
                        bound=bound, what="cqh to reach cqt and the responses to leave")

    async def wait_status(self, name, *, bound=2000):
        await self.wait(lambda: self.status(name), bound=bound, what=f"cqcsr.{name}")

    async def clear(self, name):
        """Write 1 to a W1C status bit (one cycle)."""
        self.ctx.set(getattr(self.sys.w1c, name), 1)
        await self.tick()
        self.ctx.set(getattr(self.sys.w1c, name), 0)

    def set_pr(self, *, accepted=None, retired=None):
        if accepted is not None:
            self.ctx.set(self.sys.cq.pr_accepted, accepted % PD_MOD)
        if retired is not None:
            self.ctx.set(self.sys.cq.pr_retired, retired % PD_MOD)


def run(bench, *, policy=None, rng=None, deadline=200_000, sw_args=None, vcd=None,
        system=None, processes=(), **cq_args):
    """Simulate ``await bench(sw, env)`` against a fresh :class:`CqSystem`.

    ``cq_args`` go to :class:`CommandQueue`, ``sw_args`` to :class:`Software`.  A
    prebuilt ``system`` (a :class:`CqSystem` subclass) may be given instead; if it
    has an ``inval_answered`` attribute set, the environment leaves ``inval.ready``
    to it.  ``processes`` are more simulator processes, each called with
    ``(ctx, env)``.  Returns the environment (its record) once the bench has
    returned; raises if the simulation runs past ``deadline`` cycles."""
    if system is None:
        system = CqSystem(**cq_args)
    elif cq_args:
        raise TypeError(f"give CommandQueue arguments to the system, not {cq_args!r}")
    env = Environment(system, policy=policy, rng=rng,
                      answer_inval=not getattr(system, "inval_answered", False))
    env.deadline = deadline
    sim = Simulator(system)
    sim.add_clock(1e-8)
    sim.add_process(env.process)
    for process in processes:
        async def extra(ctx, process=process):
            await process(ctx, env)
        sim.add_process(extra)
    done = []

    async def testbench(ctx):
        sw = Software(ctx, system, env, **(sw_args or {}))
        await ctx.tick()
        await bench(sw, env)
        for _ in range(3):          # let the environment record the last edges
            await ctx.tick()
        done.append(True)

    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    assert done, "bench did not finish"
    return env

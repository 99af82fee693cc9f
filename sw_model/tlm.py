"""Transaction-level model of the prifence hardware, and the engine built on it.

Three layers, all deterministic for a given seed:

:class:`Scheduler`
    A cycle-stamped discrete-event scheduler running coroutines that await
    its own operations (delay, event wait with bound, FIFO lock) and plain
    timed callbacks.  Ties are broken by insertion order.
:class:`Hardware`
    The block of DESIGN.md at transaction level: the register file of §2
    (held high words, strobes, W1C, WARL, busy, ignored writes), the PQ/FQ/CQ
    rings in a byte-addressed :class:`Memory` with fault injection by address
    range, page-request disposition by :mod:`sw_model.disposition`, in-order
    PQ publication after the write is acknowledged, the device-context cache
    with ``IODIR.INVAL_DDT``, the commands of §3 with the guarantees of
    ``IOFENCE.C`` and ``IOFENCE.PD``, and ``prg_resp`` shared round-robin by
    auto-responses and ``ATS.PRGR``.  It reports to an
    :class:`~sw_model.engine.Observer` (the checker).
:class:`TlmEngine`
    :class:`~sw_model.engine.Engine` on the scheduler and the hardware model;
    the driver, device and checker run on it unchanged.

Memory latency is drawn per access from the engine's RNG in ``mem_latency``
cycles; a register access takes ``reg_latency`` cycles.
"""

import heapq
import inspect
from collections import deque

from prifence.formats import (
    ADDR_WIDTH, CAPABILITIES_VERSION, COMMAND_BYTES, DC_BYTES, DDT_INDEX_BITS,
    FQ_RECORD_BYTES, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD, FUNC3_PRGR,
    MAX_LOG2SZ_1, PQ_RECORD_BYTES, REG, REGISTERS, CommandHeader, DdtpMode,
    DeviceContextTc, IofenceCmd, InvalDdtCmd, Opcode, PrgrCmd, codec, dc_misconfigured,
)

from .disposition import check_request, decide, fq_record, pq_record, store_fault_response
from .engine import Engine, Violation

__all__ = ["Scheduler", "Memory", "Hardware", "TlmEngine", "decode_command"]

_DELAY, _WAIT, _LOCK = 0, 1, 2


class _Op:
    __slots__ = ("kind", "arg", "bound")

    def __init__(self, kind, arg=None, bound=None):
        self.kind, self.arg, self.bound = kind, arg, bound

    def __await__(self):
        return (yield self)


class Task:
    """A coroutine run by the :class:`Scheduler`."""
    __slots__ = ("coro", "name", "done", "result", "token")

    def __init__(self, coro, name):
        self.coro, self.name = coro, name
        self.done = False
        self.result = None
        self.token = 0

    def __repr__(self):
        return f"<Task {self.name}{' done' if self.done else ''}>"


class Event:
    """``set``/``clear``/``is_set``/``await wait(bound=None)`` on a :class:`Scheduler`."""
    __slots__ = ("_sched", "_set", "_waiters")

    def __init__(self, sched):
        self._sched = sched
        self._set = False
        self._waiters = []

    def set(self):
        self._set = True
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for task in waiters:
                task.token += 1
                self._sched._push(self._sched.now, task, True)

    def clear(self):
        self._set = False

    def is_set(self):
        return self._set

    async def wait(self, bound=None):
        if self._set:
            return True
        return await _Op(_WAIT, self, bound)


class Lock:
    """A FIFO lock: ``async with lock:``."""
    __slots__ = ("_sched", "owner", "_waiters")

    def __init__(self, sched):
        self._sched = sched
        self.owner = None
        self._waiters = deque()

    def locked(self):
        return self.owner is not None

    async def __aenter__(self):
        if self.owner is None and self._sched.current is not None:
            self.owner = self._sched.current        # free: taken without a trip
        else:
            await _Op(_LOCK, self)
        return self

    async def __aexit__(self, *exc):
        if self._waiters:
            self.owner = task = self._waiters.popleft()
            self._sched._push(self._sched.now, task, None)
        else:
            self.owner = None
        return False


class Scheduler:
    """Cycle-stamped discrete-event scheduler (deterministic: FIFO among ties)."""

    def __init__(self):
        self.now = 0
        self._heap = []
        self._seq = 0
        self.current = None
        self.steps = 0
        self.tasks = []

    def _push(self, time, target, value, token=None):
        self._seq += 1
        heapq.heappush(self._heap, (time, self._seq, target, value, token))

    def spawn(self, coro, name="task"):
        """Start ``coro`` (a coroutine, or a function returning one, called
        when the task first runs) at the current cycle."""
        task = Task(coro, name)
        self.tasks.append(task)
        self._push(self.now, task, None)
        return task

    def close_unstarted(self):
        """Close the coroutines of tasks that never ran (a run that ended early)."""
        for task in self.tasks:
            coro = task.coro
            if hasattr(coro, "cr_frame") and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
                coro.close()

    def call_at(self, time, fn, arg=None):
        """Call ``fn(arg)`` at cycle ``time``."""
        self._push(max(time, self.now), fn, arg)

    def run(self, *, until=None, stop=None):
        """Run until nothing is scheduled, ``stop()`` holds, or past cycle ``until``.

        A :class:`~sw_model.engine.Violation` raised by any task ends the run
        and propagates."""
        heap = self._heap
        while heap:
            if stop is not None and stop():
                return
            time, _, target, value, token = heap[0]
            if until is not None and time > until:
                return
            heapq.heappop(heap)
            if token is not None and token != target.token:
                continue          # a timed-out wait whose event came first
            self.now = time
            self.steps += 1
            if isinstance(target, Task):
                if token is not None:   # the bound of an event wait ran out
                    target.token += 1
                    ev = value
                    ev._waiters.remove(target)
                    value = False
                self._step(target, value)
            else:
                target(value)

    def _step(self, task, value):
        self.current = task
        if not hasattr(task.coro, "send"):
            task.coro = task.coro()
        try:
            op = task.coro.send(value)
        except StopIteration as stop:
            task.done = True
            task.result = stop.value
            return
        finally:
            self.current = None
        if not isinstance(op, _Op):
            raise TypeError(f"task {task.name} awaited something that is not an engine "
                            f"operation (asyncio or cocotb?): {op!r}")
        kind = op.kind
        if kind == _DELAY:
            self._push(self.now + op.arg, task, None)
        elif kind == _WAIT:
            ev = op.arg
            if ev._set:
                self._push(self.now, task, True)
            else:
                ev._waiters.append(task)
                if op.bound is not None:
                    # value slot carries the event, token marks this wait
                    self._push(self.now + op.bound, task, ev, task.token)
        elif kind == _LOCK:
            lock = op.arg
            if lock.owner is None:
                lock.owner = task
                self._push(self.now, task, None)
            else:
                lock._waiters.append(task)
        else:
            raise TypeError(f"task {task.name} awaited something that is not an engine operation: {op!r}")

    async def delay(self, cycles):
        if cycles < 0:
            raise ValueError(f"cannot delay by {cycles} cycles")
        await _Op(_DELAY, cycles)


class FaultWindows:
    """Fault injection shared by the memory models: ranges that make the
    hardware's accesses answer with an error while the current cycle is in
    ``[start, end)``.  A subclass sets ``self._clock`` (a callable giving the
    current cycle) and ``self.faults = []``."""

    def inject_fault(self, lo, hi, *, kind="rw", start=0, end=None):
        """Fault hardware accesses (``kind`` 'r', 'w' or 'rw') to ``[lo, hi)``
        while the run's cycle is in ``[start, end)``."""
        if kind not in ("r", "w", "rw"):
            raise ValueError(f"kind must be 'r', 'w' or 'rw', not {kind!r}")
        if hi <= lo:
            raise ValueError(f"empty fault range [{lo:#x}, {hi:#x})")
        self.faults.append((lo, hi, kind, start, end))

    def faulty(self, addr, n, write):
        if not self.faults:
            return False
        now = self._clock()
        for lo, hi, kind, start, end in self.faults:
            if addr < hi and addr + n > lo and start <= now and (end is None or now < end) \
                    and (("w" in kind) if write else ("r" in kind)):
                return True
        return False


class Memory(FaultWindows):
    """Sparse byte-addressed memory with fault injection by address range.

    A fault range makes the hardware's accesses that touch it answer with an
    error (SLVERR) while the current cycle is in ``[start, end)``; the CPU's
    own accesses never fault."""

    def __init__(self, clock):
        self._pages = {}
        self._clock = clock
        self.faults = []

    def read(self, addr, n):
        out = bytearray()
        while n:
            page, off = addr >> 12, addr & 0xFFF
            take = min(n, 4096 - off)
            data = self._pages.get(page)
            out += data[off:off + take] if data is not None else bytes(take)
            addr += take
            n -= take
        return bytes(out)

    def write(self, addr, data):
        data = bytes(data)
        while data:
            page, off = addr >> 12, addr & 0xFFF
            take = min(len(data), 4096 - off)
            buf = self._pages.get(page)
            if buf is None:
                buf = self._pages[page] = bytearray(4096)
            buf[off:off + take] = data[:take]
            addr += take
            data = data[take:]


class _Queue:
    """Register state of one queue (DESIGN §2)."""

    def __init__(self, name, entry_bytes):
        self.name, self.entry = name, entry_bytes
        self.log2sz_1 = 0
        self.ppn = 0
        self.h = 0
        self.t = 0
        self.en = 0
        self.ie = 0
        self.on = 0
        self.mf = 0
        self.of = 0
        self.cmd_ill = 0
        self.fence_w_ip = 0
        self.inflight = 0

    @property
    def size(self):
        return 1 << (self.log2sz_1 + 1)

    @property
    def mask(self):
        return self.size - 1

    def addr(self, index):
        return (self.ppn << 12) | (index * self.entry)


class _PqWrite:
    __slots__ = ("seq", "req", "slot", "tc", "record", "acked", "fault", "discarded")

    def __init__(self, seq, req, slot, tc):
        self.seq, self.req, self.slot, self.tc = seq, req, slot, tc
        self.record = pq_record(req)
        self.acked = self.fault = self.discarded = False


_HDR = codec(CommandHeader)
_FENCE = codec(IofenceCmd)
_INVAL = codec(InvalDdtCmd)
_PRGR = codec(PrgrCmd)
_TC = codec(DeviceContextTc)
# Reserved bits as formats defines them (the ignored _ign* fields of ATS.PRGR
# are not reserved); IODIR.INVAL_DDT also requires its PID field to be 0.
_FENCE_RSVD = _FENCE.reserved_mask
_INVAL_RSVD = _INVAL.reserved_mask | _INVAL.mask("pid")
_PRGR_RSVD = _PRGR.reserved_mask


def decode_command(word):
    """Decode a 128-bit command: ``(kind, fields)`` with kind one of 'iofence_c',
    'iofence_pd', 'inval_ddt', 'prgr', or ``('illegal', reason)``."""
    hdr = _HDR.unpack(word)
    op, f3 = hdr["opcode"], hdr["func3"]
    if (op, f3) in ((Opcode.IOFENCE_C, FUNC3_IOFENCE_C), (Opcode.IOFENCE_PD, FUNC3_IOFENCE_PD)):
        if word & _FENCE_RSVD:
            return "illegal", "reserved bits set in IOFENCE"
        f = _FENCE.unpack(word)
        if (f["addr"] << 2) >> ADDR_WIDTH:
            return "illegal", "IOFENCE ADDR does not fit the address width"
        return ("iofence_c" if op == Opcode.IOFENCE_C else "iofence_pd"), f
    if (op, f3) == (Opcode.IODIR, FUNC3_INVAL_DDT):
        if word & _INVAL_RSVD:
            return "illegal", "reserved bits or PID set in IODIR.INVAL_DDT"
        f = _INVAL.unpack(word)
        if f["dv"] and f["did"] >> DDT_INDEX_BITS:
            return "illegal", "IODIR.INVAL_DDT DID does not fit the directory"
        return "inval_ddt", f
    if (op, f3) == (Opcode.ATS, FUNC3_PRGR):
        if word & _PRGR_RSVD:
            return "illegal", "reserved bits set in ATS.PRGR"
        return "prgr", _PRGR.unpack(word)
    return "illegal", f"no command with opcode {op} func3 {f3}"


class Hardware:
    """The prifence block at transaction level (see the module docstring).

    Construct it through :class:`TlmEngine`.  ``ingress_depth`` and
    ``dc_entries`` are the parameters of DESIGN §1."""

    def __init__(self, engine, *, ingress_depth=16, dc_entries=8, mem_latency=(1, 8)):
        if not isinstance(ingress_depth, int) or ingress_depth < 1:
            raise TypeError(f"ingress_depth must be a positive int, not {ingress_depth!r}")
        if not isinstance(dc_entries, int) or dc_entries < 1:
            raise TypeError(f"dc_entries must be a positive int, not {dc_entries!r}")
        lo, hi = mem_latency
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise TypeError(f"mem_latency must be (lo, hi) with 1 <= lo <= hi, not {mem_latency!r}")
        self.engine = engine
        self.sched = engine.sched
        self.obs = engine.observer
        self.rng = engine.rng
        self.mem = Memory(lambda: self.sched.now)
        self.mem_latency = mem_latency
        self.ingress_depth = ingress_depth
        self.dc_entries = dc_entries
        self.devices = {}

        self.ddtp_mode = DdtpMode.OFF
        self.ddtp_ppn = 0
        self.cq = _Queue("cq", COMMAND_BYTES)
        self.fq = _Queue("fq", FQ_RECORD_BYTES)
        self.pq = _Queue("pq", PQ_RECORD_BYTES)
        self.ipsr = {"cip": 0, "fip": 0, "pip": 0}
        self.held_high = {r.name: 0 for r in REGISTERS if r.size == 8}

        self.irq = {k: Event(self.sched) for k in ("cq", "fq", "pq")}
        self.ingress = deque()
        self.ingress_ready = Event(self.sched)
        self.ingress_space = Event(self.sched)
        self.accepted = 0
        self.retired = 0
        self._disposed = set()
        self.dc_cache = {}
        self.dc_gen = 0
        self.pq_pending = deque()
        self.auto_q = deque()
        self.ats_q = deque()
        self.resp_ready = Event(self.sched)
        self._rr_auto_first = True
        self.ats_issued = 0
        self.ats_done = 0
        self.progress = Event(self.sched)
        self.cq_kick = Event(self.sched)
        self.fq_records = 0
        self.counts = {"queued": 0, "auto_responses": 0, "prgr_responses": 0, "dropped": 0,
                       "fq_records": 0, "commands": 0, "fences": 0}

        self._by_word = {}
        for r in REGISTERS:
            for w in range(0, r.size, 4):
                self._by_word[r.offset + w] = r
        for proc, name in ((self._dispose_proc, "hw.dispose"), (self._response_proc, "hw.prg_resp"),
                           (self._cq_proc, "hw.cq")):
            self.sched.spawn(proc, name)

    # --- helpers ---------------------------------------------------------------
    def _lat(self):
        lo, hi = self.mem_latency
        return lo if lo == hi else self.rng.randint(lo, hi)

    def _set_ip(self, bit):
        if not self.ipsr[bit]:
            self.ipsr[bit] = 1
            self.irq[{"cip": "cq", "fip": "fq", "pip": "pq"}[bit]].set()

    def _pq_notify(self):
        if self.pq.ie:
            self._set_ip("pip")

    def _fq_notify(self):
        if self.fq.ie:
            self._set_ip("fip")

    def _cq_notify(self):
        if self.cq.ie:
            self._set_ip("cip")

    def _dispose(self, seq):
        self._disposed.add(seq)
        moved = False
        while self.retired in self._disposed:
            self._disposed.discard(self.retired)
            self.retired += 1
            moved = True
        if moved:
            self.progress.set()

    def _maybe_off(self, q):
        if not q.en and q.on and q.inflight == 0:
            q.on = 0
            self.progress.set()
            self.cq_kick.set()

    # --- registers (DESIGN §2) ------------------------------------------------
    def _value(self, name):
        cq, fq, pq = self.cq, self.fq, self.pq
        R = REG[name]
        if name == "capabilities":
            return R.encode(version=CAPABILITIES_VERSION, ats=1, igs=1, pas=ADDR_WIDTH)
        if name == "fctl":
            return R.encode(wsi=1)
        if name == "ddtp":
            return R.encode(iommu_mode=int(self.ddtp_mode), ppn=self.ddtp_ppn)
        if name in ("cqb", "fqb", "pqb"):
            q = {"cqb": cq, "fqb": fq, "pqb": pq}[name]
            return R.encode(log2sz_1=q.log2sz_1, ppn=q.ppn)
        if name in ("cqh", "fqh", "pqh"):
            return {"cqh": cq, "fqh": fq, "pqh": pq}[name].h
        if name in ("cqt", "fqt", "pqt"):
            return {"cqt": cq, "fqt": fq, "pqt": pq}[name].t
        if name == "cqcsr":
            return R.encode(cqen=cq.en, cie=cq.ie, cqmf=cq.mf, cmd_ill=cq.cmd_ill,
                            fence_w_ip=cq.fence_w_ip, cqon=cq.on, busy=int(cq.en != cq.on))
        if name == "fqcsr":
            return R.encode(fqen=fq.en, fie=fq.ie, fqmf=fq.mf, fqof=fq.of, fqon=fq.on,
                            busy=int(fq.en != fq.on))
        if name == "pqcsr":
            return R.encode(pqen=pq.en, pie=pq.ie, pqmf=pq.mf, pqof=pq.of, pqon=pq.on,
                            busy=int(pq.en != pq.on))
        if name == "ipsr":
            return R.encode(**self.ipsr)
        raise KeyError(name)

    def reg_read(self, offset):
        reg = self._by_word.get(offset)
        if reg is None:
            return 0
        return (self._value(reg.name) >> (8 * (offset - reg.offset))) & 0xFFFF_FFFF

    def reg_write(self, offset, value, strb=0xF):
        reg = self._by_word.get(offset)
        if reg is None:
            return
        value &= 0xFFFF_FFFF
        self.obs.register_write(offset, value)
        mask = 0
        for i in range(4):
            if strb >> i & 1:
                mask |= 0xFF << (8 * i)
        committed = self._value(reg.name)
        if reg.size == 8:
            if offset == reg.offset + 4:
                self.held_high[reg.name] = ((committed >> 32) & ~mask | value & mask) & 0xFFFF_FFFF
                return
            low = (committed & 0xFFFF_FFFF) & ~mask | value & mask
            self._write64(reg.name, (self.held_high[reg.name] << 32) | low)
        else:
            self._write32(reg.name, committed & ~mask | value & mask, value & mask)

    def _write64(self, name, value):
        R = REG[name]
        f = R.decode(value)
        if name == "ddtp":
            mode = f["iommu_mode"]
            if mode not in (DdtpMode.OFF, DdtpMode.BARE, DdtpMode.LVL1):
                return
            if mode == DdtpMode.LVL1 and self.ddtp_mode == DdtpMode.LVL1:
                return
            self.ddtp_mode = DdtpMode(mode)
            self.ddtp_ppn = f["ppn"]
            self.dc_cache.clear()
            self.dc_gen += 1
        elif name in ("cqb", "fqb", "pqb"):
            q = {"cqb": self.cq, "fqb": self.fq, "pqb": self.pq}[name]
            if q.en or q.on:
                return
            q.log2sz_1 = min(f["log2sz_1"], MAX_LOG2SZ_1)
            q.ppn = f["ppn"]
            if q is self.cq:
                q.t = 0
            else:
                q.h = 0
        # capabilities: read-only

    def _write32(self, name, value, written):
        cq, fq, pq = self.cq, self.fq, self.pq
        if name == "cqt":
            cq.t = value & cq.mask
            self.cq_kick.set()
        elif name == "fqh":
            fq.h = value & fq.mask
        elif name == "pqh":
            pq.h = value & pq.mask
        elif name in ("cqcsr", "fqcsr", "pqcsr"):
            q = {"cqcsr": cq, "fqcsr": fq, "pqcsr": pq}[name]
            if q.en != q.on:
                return                  # busy: the write is ignored whole
            f = REG[name].decode(value)
            clr = REG[name].decode(written)
            p = name[0] + "q"
            if clr[p + "mf"]:
                q.mf = 0
            if q is cq:
                if clr["cmd_ill"]:
                    q.cmd_ill = 0
                if clr["fence_w_ip"]:
                    q.fence_w_ip = 0
            elif clr[p + "of"]:
                q.of = 0
            en, q.ie = f[p + "en"], f[p[0] + "ie"]
            if en and not q.en:
                q.en = 1
                q.mf = q.of = q.cmd_ill = 0
                if q is cq:
                    q.h = 0
                else:
                    q.t = 0
                self.sched.call_at(self.sched.now + 1, self._turn_on, q)
            elif not en and q.en:
                q.en = 0
                self.sched.call_at(self.sched.now + 1, lambda q: self._maybe_off(q), q)
            self.progress.set()
            self.cq_kick.set()
        elif name == "ipsr":
            clr = REG["ipsr"].decode(written)
            for bit, line in (("cip", "cq"), ("fip", "fq"), ("pip", "pq")):
                if clr[bit]:
                    self.ipsr[bit] = 0
                    self.irq[line].clear()
            if cq.ie and (cq.cmd_ill or cq.mf or cq.fence_w_ip):
                self._set_ip("cip")
            if fq.ie and (fq.mf or fq.of):
                self._set_ip("fip")
            if pq.ie and (pq.mf or pq.of):
                self._set_ip("pip")
        # read-only words (cqh, fqt, pqt, fctl) ignore writes

    def _turn_on(self, q):
        if q.en:
            q.on = 1
            self.cq_kick.set()

    # --- page requests ---------------------------------------------------------
    async def accept(self, req, tag=None):
        check_request(req)
        while len(self.ingress) >= self.ingress_depth:
            self.ingress_space.clear()
            await self.ingress_space.wait()
        seq = self.accepted
        self.accepted += 1
        self.ingress.append((seq, req))
        self.obs.page_request_accepted(seq, req, tag)
        self.ingress_ready.set()
        await self.sched.delay(1)
        return seq

    async def _lookup(self, did):
        """(dc_tc, load_fault) of device ``did`` under 1LVL."""
        tc = self.dc_cache.get(did)
        if tc is not None:
            return tc, False
        gen = self.dc_gen
        addr = (self.ddtp_ppn << 12) + did * DC_BYTES
        await self.sched.delay(self._lat())
        if self.mem.faulty(addr, 8, write=False):
            return None, True
        tc = int.from_bytes(self.mem.read(addr, 8), "little")
        if gen == self.dc_gen and _TC.get(tc, "v") and not dc_misconfigured(tc):
            if len(self.dc_cache) >= self.dc_entries:
                self.dc_cache.pop(next(iter(self.dc_cache)))
            self.dc_cache[did] = tc
        return tc, False

    async def _dispose_proc(self):
        pq = self.pq
        while True:
            while not self.ingress:
                self.ingress_ready.clear()
                await self.ingress_ready.wait()
            seq, req = self.ingress[0]
            mode = self.ddtp_mode
            tc, load_fault = None, False
            if mode == DdtpMode.LVL1 and not req["did"] >> DDT_INDEX_BITS:
                tc, load_fault = await self._lookup(req["did"])
            self.ingress.popleft()
            self.ingress_space.set()
            tail, full = self._pq_tail_full()
            d = decide(req, ddtp_mode=mode, dc_tc=tc, dc_load_fault=load_fault,
                       pq_on=bool(pq.en and pq.on), pq_mf=bool(pq.mf), pq_of=bool(pq.of),
                       pq_full=full)
            if d.fq_cause is not None:
                self._fq_write(req, d.fq_cause)
            if d.set_pqof and not pq.of:
                pq.of = 1
                self._pq_notify()
            if d.write_record:
                self.counts["queued"] += 1
                entry = _PqWrite(seq, req, tail, tc)
                self.pq_pending.append(entry)
                pq.inflight += 1
                self.obs.pq_write_issued(seq, tail, self)
                self.sched.call_at(self.sched.now + self._lat(), self._pq_ack, entry)
            elif d.response is not None:
                self.auto_q.append((seq, d.response))
                self.resp_ready.set()
            else:
                self.counts["dropped"] += 1
                self.obs.request_dropped(seq)
                self._dispose(seq)
            await self.sched.delay(1)

    def _pq_tail_full(self):
        """The slot the next record goes to, and whether the PQ is full; the
        tail counts records whose writes are issued but not yet acknowledged."""
        pq = self.pq
        tail = (pq.t + len(self.pq_pending)) & pq.mask
        return tail, ((tail + 1) & pq.mask) == pq.h

    def _pq_ack(self, entry):
        pq = self.pq
        pq.inflight -= 1
        entry.acked = True
        addr = pq.addr(entry.slot)
        entry.fault = self.mem.faulty(addr, PQ_RECORD_BYTES, write=True)
        if not entry.fault:
            self.mem.write(addr, entry.record.to_bytes(PQ_RECORD_BYTES, "little"))
        if not entry.discarded:
            self._pq_publish()
        self._maybe_off(pq)

    def _pq_publish(self):
        pq, pending = self.pq, self.pq_pending
        while pending and pending[0].acked:
            entry = pending.popleft()
            if entry.fault:
                pq.mf = 1
                self._pq_notify()
                for x in [entry, *pending]:
                    x.discarded = True
                    resp = store_fault_response(x.req, dc_tc=x.tc)
                    if resp is not None:
                        self.auto_q.append((x.seq, resp))
                        self.resp_ready.set()
                    else:
                        self.obs.request_dropped(x.seq)
                        self._dispose(x.seq)
                pending.clear()
                return
            pq.t = (entry.slot + 1) & pq.mask
            self.obs.pq_published(entry.seq, pq.addr(entry.slot), entry.record)
            self._dispose(entry.seq)
            self._pq_notify()

    def _fq_write(self, req, cause):
        fq = self.fq
        if not (fq.en and fq.on) or fq.mf or fq.of:
            return
        if ((fq.t + 1) & fq.mask) == fq.h:
            fq.of = 1
            self._fq_notify()
            return
        addr = fq.addr(fq.t)
        if self.mem.faulty(addr, FQ_RECORD_BYTES, write=True):
            fq.mf = 1
        else:
            self.mem.write(addr, fq_record(req, cause).to_bytes(FQ_RECORD_BYTES, "little"))
            fq.t = (fq.t + 1) & fq.mask
            self.counts["fq_records"] += 1
        self._fq_notify()

    # --- prg_resp ---------------------------------------------------------------
    async def _response_proc(self):
        while True:
            while not self.auto_q and not self.ats_q:
                self.resp_ready.clear()
                await self.resp_ready.wait()
            take_auto = bool(self.auto_q) and (self._rr_auto_first or not self.ats_q)
            self._rr_auto_first = not take_auto
            await self.sched.delay(1)
            if take_auto:
                seq, resp = self.auto_q.popleft()
                source = ("auto", seq)
            else:
                serial, resp = self.ats_q.popleft()
                source = ("prgr", serial)
            self.obs.prg_response(resp, source)
            device = self.devices.get(resp["did"])
            if device is not None:
                device.on_prg_response(dict(resp))
            if take_auto:
                self.counts["auto_responses"] += 1
                self._dispose(seq)
            else:
                self.counts["prgr_responses"] += 1
                self.ats_done += 1
                self.progress.set()

    # --- command queue ------------------------------------------------------------
    def _cq_stopped(self):
        cq = self.cq
        return not (cq.en and cq.on) or cq.cmd_ill or cq.mf

    async def _wait_progress(self, done):
        while not done():
            self.progress.clear()
            await self.progress.wait()

    async def _cq_proc(self):
        cq = self.cq
        while True:
            if self._cq_stopped() or cq.h == cq.t:
                self.cq_kick.clear()
                await self.cq_kick.wait()
                continue
            index = cq.h
            addr = cq.addr(index)
            cq.inflight += 1
            await self.sched.delay(self._lat())
            cq.inflight -= 1
            self._maybe_off(cq)
            if self._cq_stopped():
                continue
            if self.mem.faulty(addr, COMMAND_BYTES, write=False):
                cq.mf = 1
                self._cq_notify()
                self.obs.cq_error("cqmf", index, cq.h)
                continue
            word = int.from_bytes(self.mem.read(addr, COMMAND_BYTES), "little")
            kind, f = decode_command(word)
            if kind == "illegal":
                cq.cmd_ill = 1
                self._cq_notify()
                self.obs.cq_error("cmd_ill", index, cq.h)
                continue
            self.counts["commands"] += 1
            self.obs.command_executed(index, (kind, f), self)
            if kind == "prgr":
                did = (f["dseg"] << 16 | f["rid"]) if f["dsv"] else f["rid"]
                resp = {"did": did, "pv": f["pv"], "pid": f["pid"] if f["pv"] else 0,
                        "prgi": f["prgi"], "code": f["code"]}
                self.ats_q.append((self.ats_issued, resp))
                self.ats_issued += 1
                self.resp_ready.set()
                cq.h = (index + 1) & cq.mask
            elif kind == "inval_ddt":
                if f["dv"]:
                    self.dc_cache.pop(f["did"], None)
                else:
                    self.dc_cache.clear()
                self.dc_gen += 1
                cq.h = (index + 1) & cq.mask
            else:
                await self._fence(index, kind, f)
            await self.sched.delay(1)

    async def _fence(self, index, kind, f):
        cq = self.cq
        target = self.ats_issued
        await self._wait_progress(lambda: self.ats_done >= target or not cq.en)
        if kind == "iofence_pd" and cq.en:
            snapshot = self.accepted
            await self._wait_progress(lambda: self.retired >= snapshot or not cq.en)
        if not cq.en:
            return                                  # abandoned: cqh stays on it
        if f["av"]:
            store = f["addr"] << 2
            cq.inflight += 1
            await self.sched.delay(self._lat())
            cq.inflight -= 1
            self._maybe_off(cq)
            if not cq.en:
                return
            if self.mem.faulty(store, 4, write=True):
                cq.mf = 1
                self._cq_notify()
                self.obs.cq_error("cqmf", index, cq.h)
                return
            self.mem.write(store, f["data"].to_bytes(4, "little"))
        if f["wsi"]:
            cq.fence_w_ip = 1
            self._cq_notify()
        self.counts["fences"] += 1
        self.obs.fence_completed(index, kind, f)
        cq.h = (index + 1) & cq.mask


class TlmEngine(Engine):
    """:class:`~sw_model.engine.Engine` on the transaction-level hardware model.

    Parameters (keyword-only): ``seed``, ``observer``, ``jitter_max`` as
    :class:`~sw_model.engine.Engine`; ``reg_latency`` (cycles per register
    access), ``mem_latency`` ((lo, hi) cycles per hardware memory access),
    ``ingress_depth``, ``dc_entries``; ``hardware_cls`` (a :class:`Hardware`
    subclass, e.g. a deliberately broken variant for checker tests)."""

    def __init__(self, *, seed, observer=None, jitter_max=4, reg_latency=2, mem_latency=(1, 8),
                 ingress_depth=16, dc_entries=8, hardware_cls=None):
        super().__init__(seed=seed, observer=observer, jitter_max=jitter_max)
        if not isinstance(reg_latency, int) or reg_latency < 1:
            raise TypeError(f"reg_latency must be a positive int, not {reg_latency!r}")
        self.reg_latency = reg_latency
        self.sched = Scheduler()
        hardware_cls = Hardware if hardware_cls is None else hardware_cls
        if not (isinstance(hardware_cls, type) and issubclass(hardware_cls, Hardware)):
            raise TypeError(f"hardware_cls must be a Hardware subclass, not {hardware_cls!r}")
        self.hw = hardware_cls(self, ingress_depth=ingress_depth, dc_entries=dc_entries,
                           mem_latency=mem_latency)
        self.mem = self.hw.mem

    def now(self):
        return self.sched.now

    async def delay(self, cycles):
        await _Op(_DELAY, cycles)

    def lock(self):
        return Lock(self.sched)

    def event(self):
        return Event(self.sched)

    def spawn(self, coro, name):
        return self.sched.spawn(coro, name)

    async def reg_read(self, offset):
        await _Op(_DELAY, self.reg_latency)
        return self.hw.reg_read(offset)

    async def reg_write(self, offset, value, strb=0xF):
        await _Op(_DELAY, self.reg_latency)
        self.hw.reg_write(offset, value, strb)

    async def mem_read(self, addr, n):
        await _Op(_DELAY, 1)
        return self.mem.read(addr, n)

    async def mem_write(self, addr, data):
        self.mem.write(addr, data)
        await _Op(_DELAY, 1)

    def irq_level(self, which):
        return self.hw.irq[which].is_set()

    async def wait_irq(self, which, bound=None):
        return await self.hw.irq[which].wait(bound)

    def attach_device(self, did, device):
        if did in self.hw.devices:
            raise ValueError(f"a device with did {did:#x} is already attached")
        self.hw.devices[did] = device

    async def send_page_request(self, req, tag=None):
        return await self.hw.accept(req, tag)

    async def cfg_read(self, did, name):
        await _Op(_DELAY, 1)
        return self.hw.devices[did].cfg_read(name)

    async def cfg_write(self, did, name, value):
        await _Op(_DELAY, 1)
        await self.hw.devices[did].cfg_write(name, value)

    def run(self, main, *, name="main", until=None):
        """Run coroutine ``main`` (and everything it spawns) until it returns.

        Returns its result; raises a ``hang`` :class:`Violation` if the
        simulation runs out of events (every task blocked) or passes ``until``
        before ``main`` is done, and propagates any other Violation."""
        task = self.sched.spawn(main, name)
        try:
            self.sched.run(until=until, stop=lambda: task.done)
        finally:
            self.sched.close_unstarted()
        if not task.done:
            raise self.violation("hang", f"{name} did not finish (deadlock or cycle limit {until})")
        return task.result

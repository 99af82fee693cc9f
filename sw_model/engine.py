"""The primitives the driver, device and checker models await (DESIGN.md §6).

Nothing in :mod:`sw_model` awaits asyncio or cocotb: it awaits an
:class:`Engine`.  The transaction-level engine (:class:`sw_model.tlm.TlmEngine`)
implements it on its own cycle-stamped scheduler; a cocotb adapter implements it
against the Verilated RTL by subclassing :class:`Engine` and providing the
abstract methods below.  The surface is deliberately small:

time
    :meth:`now` (clock cycles), :meth:`delay`.
synchronisation
    :meth:`lock` (an async context manager, FIFO), :meth:`event`
    (``set``/``clear``/``is_set``/``await wait()``), :meth:`spawn`,
    :meth:`wait_for` (bounded; past the bound it raises a ``hang``
    :class:`Violation`).
hardware interface
    :meth:`reg_read`/:meth:`reg_write` (32-bit AXI4-Lite words),
    :meth:`mem_read`/:meth:`mem_write` (the CPU's direct memory access),
    :meth:`irq_level`/:meth:`wait_irq` (the wired ``irq_cq``/``irq_fq``/``irq_pq``).
PCIe side
    :meth:`attach_device` (responses on ``prg_resp`` whose ``did`` is the
    device's are delivered to ``device.on_prg_response(resp)``),
    :meth:`send_page_request` (returns once accepted on ``page_req``),
    :meth:`cfg_read`/:meth:`cfg_write` (configuration access to a device's PRI
    capability).
randomness
    ``engine.rng`` (a :class:`random.Random` seeded with ``engine.seed``) for
    the random delays taken at yield points (:meth:`jitter`).

``engine.observer`` is the :class:`Observer` (normally the checker) that the
hardware side of the engine reports to.
"""

import abc
import random
from collections import deque

__all__ = ["DEFAULT_BOUND", "Violation", "Observer", "Engine", "Queue"]

#: Default bound of every wait, in clock cycles (DESIGN §6).
DEFAULT_BOUND = 100_000


class Violation(Exception):
    """A broken invariant of DESIGN §7 (``invariant`` 1–7) or a ``"hang"``.

    Carries the seed of the run, the cycle, and the objects involved."""

    def __init__(self, invariant, message, *, seed=None, cycle=None, objects=()):
        self.invariant = invariant
        self.message = message
        self.seed = seed
        self.cycle = cycle
        self.objects = tuple(objects)
        super().__init__(str(self))

    def __str__(self):
        objs = "; ".join(repr(o) for o in self.objects)
        return (f"invariant {self.invariant} violated at cycle {self.cycle} (seed {self.seed}): "
                f"{self.message}" + (f" [{objs}]" if objs else ""))


class Observer:
    """Hook points the engine, the driver and the devices report to.

    Every method is a no-op here; :class:`sw_model.checker.Checker` overrides
    them.  Hardware hooks are called by the engine's hardware side (the TLM or
    a cocotb adapter), driver and device hooks by those models.

    Hardware side
        ``page_request_accepted(seq, req, tag)``: request number ``seq`` (0, 1,
        ... in acceptance order) taken on ``page_req``; ``tag`` is what the
        sender passed out of band (the device's group).
        ``pq_write_issued(seq, slot, state)``: a PQ record write to ``slot``;
        ``state.pq`` has ``h``, ``t``, ``size``, ``mf``, ``of`` at that time.
        ``pq_published(seq, addr, record)``: pqt moved past request ``seq``'s
        record (128-bit int) at byte address ``addr``.
        ``request_dropped(seq)``: disposed of without record or response.
        ``prg_response(resp, source)``: a response accepted on ``prg_resp``,
        before the device sees it; ``source`` is ``("auto", seq)`` or
        ``("prgr", n)`` for the n-th ``ATS.PRGR`` executed.
        ``command_executed(index, (kind, fields), state)``, ``cq_error(kind,
        index, cqh)``, ``fence_completed(index, kind, fields)`` (at the AV
        store), ``register_write(offset, value)``.
    Driver side
        ``cq_written(serial, cmd, group)`` per command written to the ring (in
        CQ order), ``cqt_written(cqt, serial)`` when cqt is published,
        ``fault_reported(did, record, serial, param)`` on entry to
        ``report_device_fault`` (``serial``: records reported before it),
        ``params_allocated(did)``, ``params_released(did, param)``,
        ``handler_running(domain, group, phase)`` (phase 'start' / 'end'),
        ``domain_freed(domain)``, ``pri_off_done(did, stopped)`` (step 6.4.5).
    Device side
        ``group_finished(device, group)``, ``response_delivered(device, resp,
        group, outcome)`` (outcome 'success', 'invalid', 'failure', 'uprgi',
        'ignored'), ``device_reset(device, lost)``,
        ``pasid_reassigned(device, pid, epoch)``.
    """

    # hardware side
    def page_request_accepted(self, seq, req, tag): pass
    def pq_write_issued(self, seq, slot, state): pass
    def pq_published(self, seq, addr, record): pass
    def request_dropped(self, seq): pass
    def prg_response(self, resp, source): pass
    def command_executed(self, index, fields, state): pass
    def fence_completed(self, index, kind, fields): pass
    def cq_error(self, kind, index, cqh): pass
    def register_write(self, offset, value): pass
    # driver side
    def cq_written(self, serial, cmd, group): pass
    def cqt_written(self, cqt, serial): pass
    def fault_reported(self, did, record, serial, param): pass
    def params_allocated(self, did): pass
    def params_released(self, did, param): pass
    def handler_running(self, domain, group, phase): pass
    def domain_freed(self, domain): pass
    def pri_off_done(self, did, stopped): pass
    # device side
    def group_finished(self, device, group): pass
    def response_delivered(self, device, resp, group, outcome): pass
    def device_reset(self, device, lost): pass
    def pasid_reassigned(self, device, pid, epoch): pass


class Engine(abc.ABC):
    """Abstract engine: subclasses implement every method that raises here.

    Attributes
    ----------
    seed : int
        The seed of the run (reported in every violation).
    rng : random.Random
        The engine's seeded RNG, for random delays at yield points.
    observer : Observer
        Receives the hook calls.
    jitter_max : int
        Largest random delay :meth:`jitter` takes (0 disables jitter).
    """

    def __init__(self, *, seed, observer=None, jitter_max=4):
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {seed!r}")
        if not isinstance(jitter_max, int) or jitter_max < 0:
            raise TypeError(f"jitter_max must be a non-negative int, not {jitter_max!r}")
        self.seed = seed
        self.rng = random.Random(seed)
        self.observer = observer if observer is not None else Observer()
        self.jitter_max = jitter_max

    # --- time and synchronisation --------------------------------------------
    @abc.abstractmethod
    def now(self):
        """The current time in clock cycles."""

    @abc.abstractmethod
    async def delay(self, cycles):
        """Let ``cycles`` clock cycles pass (0: yield to other ready tasks)."""

    @abc.abstractmethod
    def lock(self):
        """A new FIFO lock, used as ``async with lock:``."""

    @abc.abstractmethod
    def event(self):
        """A new event: ``set()``, ``clear()``, ``is_set()``, ``await wait(bound=None)``
        (``wait`` returns True when set, False when ``bound`` cycles passed)."""

    @abc.abstractmethod
    def spawn(self, coro, name):
        """Run ``coro`` as a concurrent task; returns a handle with ``done``."""

    async def jitter(self):
        """A yield point: a seeded random delay of 0..``jitter_max`` cycles
        (a draw of 0 continues at once)."""
        if self.jitter_max:
            cycles = self.rng.randint(0, self.jitter_max)
            if cycles:
                await self.delay(cycles)

    def violation(self, invariant, message, objects=()):
        """A :class:`Violation` stamped with this run's seed and the current cycle."""
        return Violation(invariant, message, seed=self.seed, cycle=self.now(), objects=objects)

    async def wait_for(self, cond, bound=None, what="condition", *, wake=None):
        """Wait until ``cond`` holds, at most ``bound`` cycles (default
        :data:`DEFAULT_BOUND`); past the bound raise a ``hang`` :class:`Violation`.

        ``cond`` is an event or a predicate.  A predicate is re-checked each
        time ``wake`` (an event set by whoever changes its inputs) is set, or,
        without ``wake``, every few cycles."""
        bound = DEFAULT_BOUND if bound is None else bound
        deadline = self.now() + bound
        if not callable(cond):
            event = cond
            if not await event.wait(bound):
                raise self.violation("hang", f"waited {bound} cycles for {what}")
            return
        poll = 1
        while not cond():
            left = deadline - self.now()
            if left <= 0:
                raise self.violation("hang", f"waited {bound} cycles for {what}")
            if wake is not None:
                wake.clear()
                if cond():
                    return
                await wake.wait(left)
            else:
                await self.delay(min(poll, left))
                poll = min(poll * 2, 64)

    # --- the hardware's interface --------------------------------------------
    @abc.abstractmethod
    async def reg_read(self, offset):
        """Read the 32-bit register word at byte ``offset``."""

    @abc.abstractmethod
    async def reg_write(self, offset, value, strb=0xF):
        """Write the 32-bit register word at byte ``offset`` (``strb``: byte enables)."""

    @abc.abstractmethod
    async def mem_read(self, addr, n):
        """Read ``n`` bytes of system memory (the CPU's access; never faults)."""

    @abc.abstractmethod
    async def mem_write(self, addr, data):
        """Write bytes to system memory (the CPU's access; never faults)."""

    @abc.abstractmethod
    def irq_level(self, which):
        """The level of ``irq_<which>`` (``'pq'``, ``'fq'`` or ``'cq'``)."""

    @abc.abstractmethod
    async def wait_irq(self, which, bound=None):
        """Wait until ``irq_<which>`` is high; False if ``bound`` cycles passed first."""

    # --- PCIe side -------------------------------------------------------------
    @abc.abstractmethod
    def attach_device(self, did, device):
        """Route ``prg_resp`` traffic for ``did`` to ``device.on_prg_response``."""

    @abc.abstractmethod
    async def send_page_request(self, req, tag=None):
        """Offer one page request on ``page_req``; return once it is accepted.
        ``tag`` travels out of band to :meth:`Observer.page_request_accepted`."""

    @abc.abstractmethod
    async def cfg_read(self, did, name):
        """Read a field of device ``did``'s PRI capability (see :mod:`sw_model.device`)."""

    @abc.abstractmethod
    async def cfg_write(self, did, name, value):
        """Write a field of device ``did``'s PRI capability; returns when the
        write has taken effect (clearing Enable waits, DESIGN §5)."""


class Queue:
    """An unbounded FIFO between tasks, built on the engine's events."""

    def __init__(self, engine):
        self._items = deque()
        self._ready = engine.event()

    def __len__(self):
        return len(self._items)

    def put(self, item):
        self._items.append(item)
        self._ready.set()

    async def get(self):
        """Wait (unbounded: an idle worker is not a hang) for an item."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

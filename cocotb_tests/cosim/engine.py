"""The cocotb engine: the driver, device and checker models of :mod:`sw_model`
run unchanged against the Verilated ``prifence_top``.

:class:`CosimBench` owns what lives as long as the simulation: the clock, the
reset, cocotbext-axi's AXI4-Lite master on ``s_axil_*`` and AXI RAM on
``m_axi_*`` (:class:`CosimMemory` adds time-windowed fault injection), the
``page_req`` driver, and the hardware monitors.  :class:`CocotbEngine` is one
run's :class:`~sw_model.engine.Engine` on that bench:

* time is the simulator's, in clock cycles since the run started; model code
  runs mid-cycle (at falling-edge times), so it never races a clock edge;
  :meth:`~CocotbEngine.delay` is one simulator timer, not a count of edges;
* :meth:`~CocotbEngine.reg_read`/:meth:`~CocotbEngine.reg_write` are AXI4-Lite
  transfers; :meth:`~CocotbEngine.mem_read`/:meth:`~CocotbEngine.mem_write`
  go straight into the RAM model (the CPU's access, zero time, then one cycle);
* :meth:`~CocotbEngine.send_page_request` queues a request on ``page_req`` and
  returns once the handshake took it; responses on ``prg_resp`` (always
  ready) go to the attached device by ``did``; ``irq_*`` are the wired lines;
* the observer's hardware hooks are fed by monitors that sleep until
  something happens (``prg_resp_valid`` or a retirement rising) and then
  sample once per cycle while it lasts: ``page_request_accepted`` from the
  ``page_req`` handshake, ``pq_write_issued`` from the RAM's write of a PQ
  slot, ``pq_published``/``request_dropped`` from the retirement of each
  request (in arrival order; a published record moves pqt; a request retires
  into the PQ's two-entry output stage, so its auto-response, and a drop
  behind it, follow later in the same order),
  ``prg_response`` with its source (``("auto", seq)`` or ``("prgr", n)``),
  ``fence_completed`` from the IOFENCE AV store, ``command_executed`` from
  cqh moving on, ``cq_error`` from cmd_ill/cqmf rising (with the failing
  command found in memory, so the checker compares it with cqh),
  ``register_write`` from the engine's own register writes.

Retirement, pqt and the response arbiter's choice are not on the pinned
ports: :class:`Probe` reads them from inside the Verilated model (cocotb's
hierarchy access), and names every path it relies on in one place.

A Violation raised anywhere (a model task or a hook) ends the run: the first
one is what :meth:`CocotbEngine.run` raises.  Between runs the bench holds
the DUT in reset, clears the RAM and forgets the previous run's state, so a
seed replays the same way whether it runs alone or after others.
"""

import collections
import logging
import time

import cocotb
from cocotb.clock import Clock
from cocotb.task import resume
from cocotb.triggers import Event, FallingEdge, First, NullTrigger, RisingEdge, Timer, ValueChange
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from prifence.formats import (
    COMMAND_BYTES, FQ_RECORD_BYTES, PAGE_SHIFT, PQ_RECORD_BYTES, REG, PageRequest, PrgResponse, codec,
)
from sw_model.disposition import pq_record
from sw_model.engine import Engine, Violation
from sw_model.tlm import FaultWindows, decode_command

from .trace import violation_fields

__all__ = ["CLOCK_NS", "RAM_SIZE", "Probe", "CosimMemory", "CosimBench", "CocotbEngine"]

CLOCK_NS = 10
#: Covers every structure of :class:`sw_model.driver.Layout` (the RAM model wraps
#: addresses modulo its size).
RAM_SIZE = 1 << 20

_REQ_FIELDS = tuple(name for name, _ in PageRequest.as_shape())
_RESP_FIELDS = tuple(name for name, _ in PrgResponse.as_shape())
_QUEUE_BASES = {REG[n].offset: n for n in ("cqb", "fqb", "pqb")}
_PQH = REG["pqh"].offset
_CQT = REG["cqt"].offset


class Probe:
    """The internal signals of the Verilated ``prifence_top`` that the monitors
    read (they are not pinned ports: an RTL change that renames one fails here,
    loudly, before any run).

    ``retire``   a request retires this cycle (page-request path, arrival order)
    ``publish``  ...and it is a record published (pqt moves past it)
    ``pqt``      the published PQ tail
    ``out_item`` what the retiring request leaves in the two-entry output
                 stage before ``prg_resp`` (bit 0: it will be answered)
    ``pick_cmd`` the response arbiter offers the command queue's response
    ``cqh``      the command queue's head
    ``cmd_ill``, ``cqmf``  the cqcsr error bits
    """

    PATHS = {
        "retire": ("core", "pq", "pq_retire"),
        "publish": ("core", "pq", "pq_publish"),
        "pqt": ("core", "pq", "pqt"),
        "out_item": ("core", "pq", "pq_out_item"),
        "pick_cmd": ("core", "resp_arb", "pick_cmd"),
        "cqh": ("core", "cq", "head"),
        "cmd_ill": ("core", "regs", "cmd_ill"),
        "cqmf": ("core", "regs", "cqmf"),
    }

    def __init__(self, dut):
        for name, path in self.PATHS.items():
            handle = dut
            try:
                for part in path:
                    handle = getattr(handle, part)
            except AttributeError:
                raise RuntimeError(
                    f"the Verilated prifence_top has no internal signal {'.'.join(path)} "
                    f"(Probe.{name}); the RTL changed: update cocotb_tests/cosim/engine.py") from None
            setattr(self, name, handle)


class CosimMemory(FaultWindows):
    """The AXI RAM model seen as :class:`sw_model.tlm.Memory`: CPU reads and
    writes (never fault), and :meth:`inject_fault` windows in which the
    hardware's bursts touching a range answer SLVERR."""

    def __init__(self, ram, clock):
        self.ram = ram
        self._clock = clock
        self.faults = []
        self.lost = []                # [lo, hi): hardware writes acknowledged OKAY, not stored
        self.on_write = None          # called (addr, data) after each hardware write

    def read(self, addr, n):
        return bytes(self.ram.read(addr, n))

    def write(self, addr, data):
        self.ram.write(addr, bytes(data))

    def clear(self):
        self.ram.write(0, bytes(RAM_SIZE))
        self.faults = []
        self.lost = []

    def lose_writes(self, lo, hi):
        """A memory that lies: the hardware's writes to ``[lo, hi)`` are
        acknowledged OKAY and not stored (for checking the checker)."""
        if hi <= lo:
            raise ValueError(f"empty range [{lo:#x}, {hi:#x})")
        self.lost.append((lo, hi))

    def install(self):
        """Hook the RAM model's burst handlers (cocotbext-axi answers SLVERR
        for a burst whose handler raises)."""
        write_if, read_if = self.ram.write_if, self.ram.read_if
        original_write, original_read = write_if._write, read_if._read

        async def write(address, data):
            if self.faulty(address, len(data), True):
                raise IOError(f"injected write fault at {address:#x}")
            if not any(lo <= address < hi for lo, hi in self.lost):
                await original_write(address, data)
            if self.on_write is not None:
                self.on_write(address, data)

        async def read(address, length):
            if self.faulty(address, length, False):
                raise IOError(f"injected read fault at {address:#x}")
            return await original_read(address, length)

        write_if._write, read_if._read = write, read


class _QueueView:
    """Register state of the PQ for :meth:`Observer.pq_write_issued`, as the
    RAM model takes the record's first beat.  ``mf``/``of`` are 0: the write
    was decided earlier, when they were clear (a later request may have set
    pqof since), and the decision itself is not observed here."""
    __slots__ = ("t", "h", "size", "mf", "of")

    def __init__(self, t, h, size):
        self.t, self.h, self.size = t, h, size
        self.mf = self.of = 0


class _HwState:
    __slots__ = ("pq",)

    def __init__(self, pq):
        self.pq = pq


class CosimBench:
    """Clock, reset, bus models, ``page_req`` driver and monitors of one
    simulation (see the module docstring).  ``bench.engine`` is the run in
    progress (None between runs)."""

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.clk
        self.probe = Probe(dut)
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        dut.rst.value = 1
        dut.page_req_valid.value = 0
        dut.prg_resp_ready.value = 1
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=RAM_SIZE)
        for name in ("cocotb.prifence_top.s_axil", "cocotb.prifence_top.m_axi"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.mem = CosimMemory(self.ram, self.cycle)
        self.mem.install()
        self.mem.on_write = self._on_mem_write
        self.engine = None
        self.in_reset = True
        self.base_ns = 0
        self._pending = collections.deque()      # (req, tag, event, box)
        self._kick = Event()
        self._activity = Event()
        self.sampled_cycles = 0       # cycles in which the monitor sampled (speed figure)
        self._new_run()
        cocotb.start_soon(self._page_req_driver())
        cocotb.start_soon(self._monitor())
        cocotb.start_soon(self._cq_monitor())

    # --- time and reset ----------------------------------------------------------
    def cycle(self):
        return (int(get_sim_time("ns")) - self.base_ns) // CLOCK_NS

    def _new_run(self):
        self.accepted = []            # seq -> request
        self.retired = 0
        # Retired requests still in the PQ's output stage, in order: (seq,
        # answered).  A drop waits here only behind an earlier answer.
        self.out_stage = collections.deque()
        self.prgr_sent = 0
        self.pq_base = self.fq_base = self.cq_base = 0
        self.pq_size = self.fq_size = self.cq_size = 1
        self.cq_t = 0
        self.error_seen = {}
        self.pq_h = 0
        self.held_high = {}
        self._pending.clear()

    async def reset(self, cycles=8):
        """Hold the DUT (and the bus models) in reset, clear the RAM and every
        per-run state; return at a falling edge, the run's cycle 0."""
        self.in_reset = True
        self.engine = None
        self._pending.clear()          # the previous run's tasks are cancelled
        self.dut.rst.value = 1
        self.dut.page_req_valid.value = 0
        await FallingEdge(self.clk)
        for _ in range(cycles):
            await FallingEdge(self.clk)
        self.mem.clear()
        self._new_run()
        # The page_req driver has seen the empty queue (valid low) before the
        # DUT leaves reset: nothing of the previous run can be accepted.
        await FallingEdge(self.clk)
        self.dut.page_req_valid.value = 0
        self.dut.rst.value = 0
        for _ in range(2):
            await FallingEdge(self.clk)
        self.in_reset = False
        self.base_ns = int(get_sim_time("ns")) - CLOCK_NS // 2

    # --- register writes seen by the bench -----------------------------------------
    def note_register_write(self, offset, value):
        """Track the queue bases and pqh the hardware is given (for the
        monitors); called as the write is issued."""
        if offset == _PQH:
            self.pq_h = value & (self.pq_size - 1)
        elif offset == _CQT:
            self.cq_t = value & (self.cq_size - 1)
        for base, name in _QUEUE_BASES.items():
            if offset == base + 4:
                self.held_high[name] = value
            elif offset == base:
                word = self.held_high.get(name, 0) << 32 | value
                f = REG[name].decode(word)
                if name == "pqb":
                    self.pq_base, self.pq_size = f["ppn"] << PAGE_SHIFT, 2 << f["log2sz_1"]
                elif name == "fqb":
                    self.fq_base, self.fq_size = f["ppn"] << PAGE_SHIFT, 2 << f["log2sz_1"]
                else:
                    self.cq_base, self.cq_size = f["ppn"] << PAGE_SHIFT, 2 << f["log2sz_1"]
                    self.cq_t = 0

    # --- the hardware's memory writes ----------------------------------------------
    def _on_mem_write(self, addr, data):
        engine = self.engine
        if engine is None or self.in_reset:
            return
        pq_end = self.pq_base + self.pq_size * PQ_RECORD_BYTES
        if self.pq_base <= addr < pq_end:
            if (addr - self.pq_base) % PQ_RECORD_BYTES == 0:
                slot = (addr - self.pq_base) // PQ_RECORD_BYTES
                view = _QueueView(int(self.probe.pqt.value), self.pq_h, self.pq_size)
                engine.hook("pq_write_issued", None, slot, _HwState(view))
            return
        fq_end = self.fq_base + self.fq_size * FQ_RECORD_BYTES
        if self.fq_base <= addr < fq_end:
            if engine.trace is not None and (addr - self.fq_base) % FQ_RECORD_BYTES == 0:
                engine.trace.add("fq_record", dw0=hex(int.from_bytes(data[:8], "little")))
            return
        if len(data) == 4:            # the IOFENCE AV store: the fence completes
            value = int.from_bytes(data, "little")
            if engine.trace is not None:
                engine.trace.add("fence_state", data=value, pqt=int(self.probe.pqt.value))
            engine.hook("fence_completed", None, None, {"av": 1, "data": value})

    # --- page_req --------------------------------------------------------------------
    def offer(self, req, tag):
        """Queue ``req``; returns (event, box): box gets the seq once accepted."""
        event, box = Event(), []
        self._pending.append((req, tag, event, box))
        self._kick.set()
        return event, box

    async def _page_req_driver(self):
        dut = self.dut
        ports = {name: getattr(dut, f"page_req_{name}") for name in _REQ_FIELDS}
        ready = dut.page_req_ready
        while True:
            if self.in_reset:
                dut.page_req_valid.value = 0
                await FallingEdge(self.clk)
                continue
            if not self._pending:
                dut.page_req_valid.value = 0
                self._kick.clear()
                await self._kick.wait()
                await FallingEdge(self.clk)
                continue
            req, tag, event, box = self._pending[0]
            for name, port in ports.items():
                port.value = req[name]
            dut.page_req_valid.value = 1
            # ready never depends on valid: its value this cycle decides the handshake.
            if int(ready.value) and not self.in_reset:
                self._pending.popleft()
                seq = len(self.accepted)
                self.accepted.append(req)
                if self.engine is not None:
                    self.engine.hook("page_request_accepted", seq, req, tag)
                box.append(seq)
                event.set()
            await FallingEdge(self.clk)

    # --- retirement and prg_resp ------------------------------------------------------
    async def _monitor(self):
        dut, probe = self.dut, self.probe
        valid = dut.prg_resp_valid
        resp_ports = {name: getattr(dut, f"prg_resp_{name}") for name in _RESP_FIELDS}
        retire, publish, pqt, pick_cmd = probe.retire, probe.publish, probe.pqt, probe.pick_cmd
        out_item = probe.out_item
        while True:
            if not (int(valid.value) or int(retire.value)):
                await First(RisingEdge(valid), RisingEdge(retire))
                await FallingEdge(self.clk)
            self.sampled_cycles += 1
            engine = self.engine
            if engine is None or self.in_reset:
                await FallingEdge(self.clk)
                continue
            # A request retires into the PQ's two-entry output stage (published
            # records move pqt then); its auto-response leaves the stage later,
            # in the same order, so an auto-response on prg_resp belongs to the
            # oldest answered request still in the stage, not to the one
            # retiring in this cycle.
            if int(valid.value):          # prg_resp_ready is always 1: a transfer
                resp = {name: int(port.value) for name, port in resp_ports.items()}
                if int(pick_cmd.value):
                    source = ("prgr", self.prgr_sent)
                    self.prgr_sent += 1
                else:
                    self._flush_drops(engine)
                    seq = self.out_stage.popleft()[0] if self.out_stage else self.retired
                    source = ("auto", seq)
                engine.deliver(resp, source)
                self._flush_drops(engine)
            if int(retire.value):
                seq = self.retired
                self.retired += 1
                if int(publish.value):
                    slot = int(pqt.value)
                    addr = self.pq_base + slot * PQ_RECORD_BYTES
                    req = self.accepted[seq] if seq < len(self.accepted) else None
                    record = pq_record(req) if req is not None else int.from_bytes(
                        self.mem.read(addr, PQ_RECORD_BYTES), "little")
                    engine.hook("pq_published", seq, addr, record)
                elif int(out_item.value) & 1:
                    self.out_stage.append((seq, True))
                elif self.out_stage:
                    self.out_stage.append((seq, False))
                else:
                    engine.hook("request_dropped", seq)
            await FallingEdge(self.clk)

    def _flush_drops(self, engine):
        """Report the dropped requests now at the front of the output stage
        (the answers before them have left)."""
        while self.out_stage and not self.out_stage[0][1]:
            engine.hook("request_dropped", self.out_stage.popleft()[0])


    # --- the command queue: executions and errors ------------------------------------------
    def _failing_index(self, head, kind):
        """The command a cmd_ill belongs to, found in memory independently of
        cqh: the first illegal command from cqh to cqt (cqh itself for cqmf,
        whose cause — a fetch fault — leaves nothing in memory to look at)."""
        if kind != "cmd_ill":
            return head
        index = head
        for _ in range(self.cq_size):
            word = int.from_bytes(self.mem.read(self.cq_base + index * COMMAND_BYTES,
                                                COMMAND_BYTES), "little")
            if decode_command(word)[0] == "illegal" or index == self.cq_t:
                return index
            index = (index + 1) % self.cq_size
        return head

    async def _cq_monitor(self):
        probe = self.probe
        cqh, bits = probe.cqh, {"cmd_ill": probe.cmd_ill, "cqmf": probe.cqmf}
        last = int(cqh.value)
        while True:
            await First(ValueChange(cqh), ValueChange(bits["cmd_ill"]), ValueChange(bits["cqmf"]))
            engine = self.engine
            head = int(cqh.value)
            if engine is not None and not self.in_reset:
                # cqh moving on by one is a command done (0 after a re-enable is not).
                if head == (last + 1) % self.cq_size:
                    engine.hook("command_executed", last, ("executed", {}), None)
                for kind, bit in bits.items():
                    if int(bit.value) and not self.error_seen.get(kind):
                        self.error_seen[kind] = True
                        engine.hook("cq_error", kind, self._failing_index(head, kind), head)
            for kind, bit in bits.items():
                if not int(bit.value):
                    self.error_seen[kind] = False
            last = head


class _Lock:
    """FIFO lock on cocotb events (``async with lock:``)."""
    __slots__ = ("owner", "_waiters")

    def __init__(self):
        self.owner = False
        self._waiters = collections.deque()

    def locked(self):
        return self.owner

    async def __aenter__(self):
        if not self.owner:
            self.owner = True
            return self
        event = Event()
        self._waiters.append(event)
        await event.wait()           # ownership handed over by __aexit__
        return self

    async def __aexit__(self, *exc):
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self.owner = False
        return False


class _Event:
    """The engine's event: ``set``/``clear``/``is_set``/``await wait(bound)``."""
    __slots__ = ("_event",)

    def __init__(self):
        self._event = Event()

    def set(self):
        self._event.set()

    def clear(self):
        self._event.clear()

    def is_set(self):
        return self._event.is_set()

    async def wait(self, bound=None):
        if self._event.is_set():
            return True
        if bound is None:
            await self._event.wait()
            return True
        if bound <= 0:
            return False
        await First(self._event.wait(), Timer(bound * CLOCK_NS, "ns"))
        return self._event.is_set()


class _Handle:
    __slots__ = ("task", "name")

    def __init__(self, task, name):
        self.task, self.name = task, name

    @property
    def done(self):
        return self.task.done()

    def __repr__(self):
        return f"<task {self.name}{' done' if self.done else ''}>"


class CocotbEngine(Engine):
    """:class:`~sw_model.engine.Engine` on a :class:`CosimBench` (one run).

    Keyword-only parameters: ``bench``, ``seed``, ``observer``,
    ``jitter_max`` as :class:`~sw_model.engine.Engine`; ``trace`` (optional
    :class:`~cocotb_tests.cosim.trace.Trace`, kept as ``engine.trace``).
    :meth:`run` is called from a :func:`cocotb.task.bridge` thread (as
    :func:`sw_model.scenarios.run_scenario` calls it) and blocks it while the
    simulator runs the coroutine."""

    def __init__(self, *, bench, seed, observer=None, jitter_max=4, trace=None):
        super().__init__(seed=seed, observer=observer, jitter_max=jitter_max)
        if not isinstance(bench, CosimBench):
            raise TypeError(f"bench must be a CosimBench, not {bench!r}")
        self.bench = bench
        self.mem = bench.mem
        self.trace = trace
        self.devices = {}
        self._tasks = []
        self._failure = None
        self._failed = Event()
        self.wall_s = 0.0

    # --- failure -------------------------------------------------------------------
    def _fail(self, exc):
        if self._failure is None:
            self._failure = exc
            if self.trace is not None and isinstance(exc, Violation):
                self.trace.add("violation", **violation_fields(exc))
        self._failed.set()

    def hook(self, name, *args):
        """Call observer hook ``name`` from the hardware side (the monitors);
        whatever it raises ends the run and is what :meth:`run` raises."""
        if self._failure is not None:
            return
        try:
            getattr(self.observer, name)(*args)
        except Exception as exc:        # noqa: BLE001 - ends the run, reported by run()
            self._fail(exc)

    def deliver(self, resp, source):
        """A transfer on ``prg_resp``: the observer first, then the device."""
        if self._failure is not None:
            return
        try:
            self.observer.prg_response(resp, source)
            device = self.devices.get(resp["did"])
            if device is not None:
                device.on_prg_response(dict(resp))
        except Exception as exc:        # noqa: BLE001
            self._fail(exc)

    # --- time and synchronisation ----------------------------------------------------
    def now(self):
        return self.bench.cycle()

    async def delay(self, cycles):
        if cycles < 0:
            raise ValueError(f"cannot delay by {cycles} cycles")
        if cycles == 0:
            await NullTrigger()
        else:
            await Timer(cycles * CLOCK_NS, "ns")

    def lock(self):
        return _Lock()

    def event(self):
        return _Event()

    def spawn(self, coro, name):
        task = cocotb.start_soon(self._guard(coro))
        self._tasks.append(task)
        return _Handle(task, name)

    async def _guard(self, coro):
        try:
            return await coro
        except Exception as exc:        # noqa: BLE001 - the run's first failure
            self._fail(exc)

    # --- registers and memory --------------------------------------------------------
    async def reg_read(self, offset):
        data = (await self.bench.axil.read(offset, 4)).data
        await self._realign()
        return int.from_bytes(data, "little")

    async def reg_write(self, offset, value, strb=0xF):
        value &= 0xFFFF_FFFF
        lanes = [i for i in range(4) if strb >> i & 1]
        if not lanes:
            return
        if lanes != list(range(lanes[0], lanes[-1] + 1)):
            raise ValueError(f"byte enables must be contiguous on AXI4-Lite here, not {strb:#x}")
        self.observer.register_write(offset, value)
        if self.trace is not None and strb != 0xF:
            self.trace.add("reg_strb", offset=offset, strb=strb)
        self.bench.note_register_write(offset, value)
        data = value.to_bytes(4, "little")[lanes[0]:lanes[-1] + 1]
        await self.bench.axil.write(offset + lanes[0], data)
        await self._realign()

    async def _realign(self):
        # The bus model resumes at a rising edge; model code runs mid-cycle.
        await FallingEdge(self.bench.clk)

    async def mem_read(self, addr, n):
        await self.delay(1)
        return self.mem.read(addr, n)

    async def mem_write(self, addr, data):
        if self.trace is not None:
            self.trace.add("cpu_write", addr=addr, data=bytes(data).hex())
        self.mem.write(addr, data)
        await self.delay(1)

    def irq_level(self, which):
        return bool(int(getattr(self.bench.dut, f"irq_{which}").value))

    async def wait_irq(self, which, bound=None):
        line = getattr(self.bench.dut, f"irq_{which}")
        if int(line.value):
            return True
        if bound is not None and bound <= 0:
            return False
        edge = RisingEdge(line)
        fired = edge if bound is None else await First(edge, Timer(bound * CLOCK_NS, "ns"))
        if bound is None:
            await edge
        if fired is edge:
            await FallingEdge(self.bench.clk)     # back to mid-cycle
            return True
        return bool(int(line.value))

    # --- PCIe side -------------------------------------------------------------------
    def attach_device(self, did, device):
        if did in self.devices:
            raise ValueError(f"a device with did {did:#x} is already attached")
        self.devices[did] = device

    async def send_page_request(self, req, tag=None):
        event, box = self.bench.offer(req, tag)
        await event.wait()
        return box[0]

    async def cfg_read(self, did, name):
        await self.delay(1)
        return self.devices[did].cfg_read(name)

    async def cfg_write(self, did, name, value):
        await self.delay(1)
        await self.devices[did].cfg_write(name, value)

    # --- running ------------------------------------------------------------------------
    def run(self, main, *, name="main", until=None):
        """Run coroutine ``main`` on the simulator until it returns (called
        from a bridge thread); raises the run's first failure, or a ``hang``
        Violation past ``until`` cycles."""
        return resume(self._run)(main, name, until)

    async def _run(self, main, name, until):
        bench = self.bench
        bench.engine = self
        started = time.perf_counter()
        main_task = cocotb.start_soon(self._guard_main(main))
        waits = [main_task, self._failed.wait()]
        if until is not None:
            waits.append(Timer(until * CLOCK_NS, "ns"))
        try:
            await First(*waits)
            if self._failure is not None:
                raise self._failure
            if not main_task.done():
                raise self.violation("hang", f"{name} did not finish within {until} cycles")
            return main_task.result()
        finally:
            self.wall_s = time.perf_counter() - started
            for task in [main_task, *self._tasks]:
                if not task.done():
                    task.cancel()
            bench.engine = None

    async def _guard_main(self, main):
        try:
            return await main
        except Exception as exc:        # noqa: BLE001
            self._fail(exc)

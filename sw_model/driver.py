"""IOMMU driver model: the seed's page-fault flow (DESIGN.md §6).

:class:`SeedDriver` drives the hardware only through its engine: registers,
the queue rings in memory (PQ consumed from pqh to pqt, commands written at
cqt), ``ATS.PRGR``, ``IOFENCE.C``, ``IOFENCE.PD``, ``IODIR.INVAL_DDT``, the
``irq_pq`` line, and the devices' PRI capability through configuration access.

Locks, as in a kernel: one lock per device (:class:`FaultParam.lock`) guards its
partial list, pending-group list, PASID → attach-handle table and every
``ATS.PRGR`` written for it; the command-queue lock guards cqt and the ring;
a task needing both takes the device lock first.  Every step is an ``async``
method a variant overrides; every yield point takes a seeded random delay
(:meth:`~sw_model.engine.Engine.jitter`); every wait has a bound.

Named policies (:data:`POLICIES`): ``"seed"`` (:class:`SeedDriver`) and
``"reviewed"`` (:class:`ReviewedDriver`: flush the work queue, then discard
pending faults without responding — it breaks invariant 1 by design).
"""

import enum

from prifence.formats import (
    COMMAND_BYTES, DC_BYTES, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD, FUNC3_PRGR,
    PQ_RECORD_BYTES, REG, DdtpMode, DeviceContextTc, IofenceCmd, InvalDdtCmd, Opcode,
    PqRecord, PrgrCmd, ResponseCode, codec, is_stop_marker,
)

from .engine import DEFAULT_BOUND, Queue

__all__ = ["DriverCode", "PCIE_CODE", "Domain", "AttachHandle", "FaultEvent", "Group",
           "FaultParam", "SeedDriver", "ReviewedDriver", "POLICIES", "Layout"]


class DriverCode(enum.Enum):
    """The driver's own response codes."""
    SUCCESS = "success"
    INVALID = "invalid"
    FAILURE = "failure"


#: Driver response codes → PCIe PRG response codes (explicit, no arithmetic).
PCIE_CODE = {
    DriverCode.SUCCESS: ResponseCode.SUCCESS,            # 0x0
    DriverCode.INVALID: ResponseCode.INVALID_REQUEST,    # 0x1
    DriverCode.FAILURE: ResponseCode.RESPONSE_FAILURE,   # 0xF
}

_PQ = codec(PqRecord)
_PRGR = codec(PrgrCmd)
_FENCE = codec(IofenceCmd)
_INVAL = codec(InvalDdtCmd)
_TC = codec(DeviceContextTc)


class Domain:
    """An address space with a fault handler.

    The handler takes ``handler_time`` (lo, hi) cycles and answers Success,
    except Invalid Request with probability ``invalid_rate`` and Failure with
    ``failure_rate``.  ``pending`` counts groups bound to it that have not
    been through :meth:`SeedDriver.page_response`; ``wake`` is set whenever
    it drops."""

    def __init__(self, engine, name, *, fault_capable=True, handler_time=(5, 60),
                 invalid_rate=0.05, failure_rate=0.0):
        self.name = name
        self.fault_capable = fault_capable
        self.handler_time = handler_time
        self.invalid_rate = invalid_rate
        self.failure_rate = failure_rate
        self.pending = 0
        self.freed = False
        self.wake = engine.event()

    def __repr__(self):
        return f"<Domain {self.name}{' freed' if self.freed else ''}>"


class AttachHandle:
    """The binding of a PASID (or the RID, key ``None``) to a domain."""
    __slots__ = ("key", "domain")

    def __init__(self, key, domain):
        self.key, self.domain = key, domain


class FaultEvent:
    """One reported PQ record (allocated before anything else, as the seed says)."""
    __slots__ = ("record", "serial")

    def __init__(self, record, serial):
        self.record, self.serial = record, serial

    @property
    def key(self):
        return self.record["pid"] if self.record["pv"] else None


class Group:
    """A page-request group assembled on its L=1 record, bound to a domain."""
    __slots__ = ("param", "events", "domain", "dead", "responded")

    def __init__(self, param, events, domain):
        self.param, self.events, self.domain = param, events, domain
        self.dead = False
        self.responded = 0

    @property
    def last(self):
        return self.events[-1].record

    @property
    def key(self):
        return self.events[-1].key

    def __repr__(self):
        r = self.last
        pasid = f" pasid {r['pid']:#x}" if r["pv"] else ""
        return f"<Group did {r['did']:#x}{pasid} prgi {r['prgi']} serial {self.events[-1].serial}>"


class FaultParam:
    """A device's fault parameters (refcounted; looked up without locks)."""

    def __init__(self, engine, did, prpr):
        self.did = did
        self.prpr = prpr
        self.lock = engine.lock()
        self.partials = []
        self.pending = []
        self.handles = {}
        self.refs = 1
        self.released = False


class Layout:
    """Where the driver puts its structures in memory (page-aligned bases)."""

    def __init__(self, *, ddt=0x10_000, cq=0x20_000, pq=0x40_000, fq=0x60_000, fence=0x80_000,
                 cq_log2sz_1=5, pq_log2sz_1=5, fq_log2sz_1=3):
        for name, value in (("ddt", ddt), ("cq", cq), ("pq", pq), ("fq", fq), ("fence", fence)):
            if not isinstance(value, int) or value & 0xFFF:
                raise ValueError(f"{name} base must be a 4 KiB-aligned int, not {value!r}")
        self.ddt, self.cq, self.pq, self.fq, self.fence = ddt, cq, pq, fq, fence
        self.cq_log2sz_1, self.pq_log2sz_1, self.fq_log2sz_1 = cq_log2sz_1, pq_log2sz_1, fq_log2sz_1


def _bit(reg, field):
    return 1 << REG[reg].field(field).lsb


class SeedDriver:
    """The seed's flow (DESIGN §6).  See the module docstring.

    Keyword-only parameters: ``workers`` (work-queue workers), ``layout``
    (:class:`Layout`), ``bound`` (cycles per wait), ``pq_batch`` (records
    reported before pqh is written)."""

    name = "seed"

    def __init__(self, engine, *, workers=2, layout=None, bound=DEFAULT_BOUND, pq_batch=8):
        if not isinstance(workers, int) or workers < 1:
            raise TypeError(f"workers must be a positive int, not {workers!r}")
        self.engine = engine
        self.obs = engine.observer
        self.layout = layout or Layout()
        self.bound = bound
        self.workers = workers
        self.pq_batch = pq_batch
        self.params = {}
        self.bindings = {}                # did -> {key: domain}: what software wants attached
        self.prpr = {}
        self.cq_lock = engine.lock()
        self.cq_size = 1 << (self.layout.cq_log2sz_1 + 1)
        self.pq_size = 1 << (self.layout.pq_log2sz_1 + 1)
        self.fq_size = 1 << (self.layout.fq_log2sz_1 + 1)
        self.cqt = 0
        self.cqh_seen = 0
        self.cq_serial = 0
        self.cq_log = {}                  # ring index -> command word, for resubmission
        self.fence_count = 0
        self.pq_head = 0
        self.pq_serial = 0                # records finished reporting (cumulative)
        self.pq_progress = engine.event()
        self.fq_head = 0
        self.wq = Queue(engine)
        self.wq_busy = 0
        self.wq_idle = engine.event()
        self.stopping = False
        self.counts = {"records": 0, "groups": 0, "prgr": 0, "fences": 0, "no_domain": 0,
                       "pq_errors": 0, "cq_recoveries": 0, "fq_records": 0, "handlers": 0}

    # --- small helpers ---------------------------------------------------------------
    async def _rd(self, name):
        return await self.engine.reg_read(REG[name].offset)

    async def _wr(self, name, value):
        await self.engine.reg_write(REG[name].offset, value)

    async def _wr64(self, name, value):
        off = REG[name].offset
        await self.engine.reg_write(off + 4, value >> 32)
        await self.engine.reg_write(off, value & 0xFFFF_FFFF)

    async def _csr_wait(self, name, on_field, want):
        await self._poll(lambda v: bool(v & _bit(name, on_field)) == want, name,
                         f"{name}.{on_field} == {int(want)}")

    async def _poll(self, ok, reg, what):
        """Poll register ``reg`` until ``ok(value)``, bounded."""
        deadline = self.engine.now() + self.bound
        interval = 1
        while True:
            v = await self._rd(reg)
            if ok(v):
                return v
            if self.engine.now() >= deadline:
                raise self.engine.violation("hang", f"waited {self.bound} cycles for {what}")
            await self.engine.delay(interval)
            interval = min(interval * 2, 32)

    # --- bring-up ------------------------------------------------------------------
    async def start(self):
        """Program the queues and ddtp, enable them, start the servicers and workers."""
        L = self.layout
        await self._wr64("cqb", REG["cqb"].encode(log2sz_1=L.cq_log2sz_1, ppn=L.cq >> 12))
        await self._wr("cqcsr", REG["cqcsr"].encode(cqen=1, cie=1))
        await self._csr_wait("cqcsr", "cqon", True)
        await self._wr64("fqb", REG["fqb"].encode(log2sz_1=L.fq_log2sz_1, ppn=L.fq >> 12))
        await self._wr("fqcsr", REG["fqcsr"].encode(fqen=1, fie=1))
        await self._csr_wait("fqcsr", "fqon", True)
        await self._wr64("pqb", REG["pqb"].encode(log2sz_1=L.pq_log2sz_1, ppn=L.pq >> 12))
        await self._wr("pqcsr", REG["pqcsr"].encode(pqen=1, pie=1))
        await self._csr_wait("pqcsr", "pqon", True)
        await self.engine.mem_write(L.ddt, bytes(DC_BYTES * 128))
        await self._wr64("ddtp", REG["ddtp"].encode(iommu_mode=DdtpMode.LVL1, ppn=L.ddt >> 12))
        self.engine.spawn(self.pq_servicer(), "drv.pq_servicer")
        self.engine.spawn(self.fq_servicer(), "drv.fq_servicer")
        self.engine.spawn(self.cq_servicer(), "drv.cq_servicer")
        for i in range(self.workers):
            self.engine.spawn(self.worker(i), f"drv.worker{i}")

    # --- command queue ---------------------------------------------------------------
    async def submit(self, commands):
        """Write ``commands`` ((word, group-or-None) pairs) at cqt and publish cqt."""
        async with self.cq_lock:
            for word, group in commands:
                while ((self.cqt + 1) % self.cq_size) == self.cqh_seen:
                    # publish what is written so far: the hardware makes room
                    # only by executing it
                    await self._wr("cqt", self.cqt)
                    self.obs.cqt_written(self.cqt, self.cq_serial)
                    await self._wait_for_room()
                await self.engine.mem_write(self.layout.cq + self.cqt * COMMAND_BYTES,
                                            word.to_bytes(COMMAND_BYTES, "little"))
                self.cq_log[self.cqt] = word
                self.obs.cq_written(self.cq_serial, word, group)
                self.cq_serial += 1
                self.cqt = (self.cqt + 1) % self.cq_size
            await self._wr("cqt", self.cqt)
            self.obs.cqt_written(self.cqt, self.cq_serial)

    async def _wait_for_room(self):
        """Poll cqh until the ring has room (cq lock held); a CQ stopped on an
        error is recovered here, as nobody else can take the lock meanwhile."""
        deadline = self.engine.now() + self.bound
        interval = 1
        while True:
            self.cqh_seen = await self._rd("cqh")
            if ((self.cqt + 1) % self.cq_size) != self.cqh_seen:
                return
            if await self._rd("cqcsr") & self._cq_errors:
                await self._recover_locked()
                return
            if self.engine.now() >= deadline:
                raise self.engine.violation("hang", f"no room in the CQ after {self.bound} cycles")
            await self.engine.delay(interval)
            interval = min(interval * 2, 32)

    def prgr_command(self, group, code):
        """The ``ATS.PRGR`` answering ``group`` with driver code ``code``."""
        r = group.last
        pv = int(bool(r["pv"]) and group.param.prpr)
        return _PRGR.pack(opcode=Opcode.ATS, func3=FUNC3_PRGR, pid=r["pid"] if pv else 0, pv=pv,
                          dsv=1, rid=r["did"] & 0xFFFF, dseg=r["did"] >> 16, prgi=r["prgi"],
                          code=int(PCIE_CODE[code]))

    async def write_prgr(self, groups_codes):
        """Respond to groups: ``(group, code)`` pairs, one ``ATS.PRGR`` each."""
        if groups_codes:
            for group, _ in groups_codes:
                group.responded += 1
            self.counts["prgr"] += len(groups_codes)
            await self.submit([(self.prgr_command(g, c), g) for g, c in groups_codes])

    async def fence(self, *, pd=False):
        """Submit ``IOFENCE.C`` (or ``IOFENCE.PD``) with an AV store and wait for
        the store (polling memory, bounded; CQ errors are recovered)."""
        self.fence_count += 1
        data = self.fence_count & 0xFFFF_FFFF
        slot = self.layout.fence + (self.fence_count % 1024) * 4
        await self.engine.mem_write(slot, bytes(4))
        word = _FENCE.pack(opcode=Opcode.IOFENCE_PD if pd else Opcode.IOFENCE_C,
                           func3=FUNC3_IOFENCE_PD if pd else FUNC3_IOFENCE_C,
                           av=1, data=data, addr=slot >> 2)
        await self.submit([(word, None)])
        self.counts["fences"] += 1
        deadline = self.engine.now() + self.bound
        interval, polls = 1, 0
        while True:
            raw = await self.engine.mem_read(slot, 4)
            if int.from_bytes(raw, "little") == data:
                return
            polls += 1
            if polls % 4 == 0:
                csr = await self._rd("cqcsr")
                if csr & (_bit("cqcsr", "cmd_ill") | _bit("cqcsr", "cqmf")):
                    await self.recover_cq()
                    interval = 1
            if self.engine.now() >= deadline:
                raise self.engine.violation("hang", f"fence {data} not complete after {self.bound} cycles")
            await self.engine.delay(interval)
            interval = min(interval * 2, 32)

    _cq_errors = _bit("cqcsr", "cmd_ill") | _bit("cqcsr", "cqmf")

    async def recover_cq(self):
        """cmd_ill / cqmf: restart the CQ and resubmit the commands from cqh on
        (without the illegal one), in order."""
        async with self.cq_lock:
            await self._recover_locked()

    async def _recover_locked(self):
        """The body of :meth:`recover_cq` (cq lock held)."""
        csr = await self._rd("cqcsr")
        ill = bool(csr & _bit("cqcsr", "cmd_ill"))
        if not (ill or csr & _bit("cqcsr", "cqmf")):
            return
        self.counts["cq_recoveries"] += 1
        head = await self._rd("cqh")
        todo, i = [], head
        if ill:
            i = (i + 1) % self.cq_size
        while i != self.cqt:
            todo.append(self.cq_log[i])
            i = (i + 1) % self.cq_size
        await self._wr("cqcsr", REG["cqcsr"].encode(cqen=0))
        await self._csr_wait("cqcsr", "cqon", False)
        # Enabling zeroes cqh but not cqt: empty the ring first, or the
        # hardware would run the stale slots before they are rewritten.
        await self._wr("cqt", 0)
        await self._wr("cqcsr", REG["cqcsr"].encode(cqen=1, cie=1, cmd_ill=1, cqmf=1))
        await self._csr_wait("cqcsr", "cqon", True)
        self.cqt, self.cqh_seen = 0, 0
        self.cq_log = {}
        for word in todo:
            await self.engine.mem_write(self.layout.cq + self.cqt * COMMAND_BYTES,
                                        word.to_bytes(COMMAND_BYTES, "little"))
            self.cq_log[self.cqt] = word
            self.cqt += 1
        await self._wr("cqt", self.cqt)

    async def cq_servicer(self):
        """On ``irq_cq``: clear cip; recover from cmd_ill / cqmf."""
        cip = _bit("ipsr", "cip")
        while not self.stopping:
            await self.engine.wait_irq("cq")
            await self.engine.jitter()
            await self._wr("ipsr", cip)
            await self.recover_cq()

    async def fence_responses(self):
        """``IOFENCE.C``: every ``ATS.PRGR`` written so far has been sent."""
        await self.fence(pd=False)

    async def invalidate_device_context(self, did):
        """``IODIR.INVAL_DDT`` for ``did`` (the caller fences)."""
        await self.submit([(_INVAL.pack(opcode=Opcode.IODIR, func3=FUNC3_INVAL_DDT, dv=1, did=did), None)])

    async def write_device_context(self, did, *, en_pri, prpr):
        tc = _TC.pack(v=1, en_ats=1, en_pri=int(en_pri), prpr=int(prpr and en_pri))
        await self.engine.mem_write(self.layout.ddt + did * DC_BYTES, tc.to_bytes(8, "little"))

    async def drain_page_requests(self):
        """``IOFENCE.PD``, read pqt as T, then wait until the PQ servicer has
        finished reporting every record up to T."""
        await self.fence(pd=True)
        tail = await self._rd("pqt")
        target = self.pq_serial + ((tail - self.pq_head) % self.pq_size)
        await self.engine.wait_for(lambda: self.pq_serial >= target, self.bound,
                                   "the PQ servicer to report up to pqt", wake=self.pq_progress)

    # --- the PQ servicer and the fault path ------------------------------------------------
    async def pq_servicer(self):
        """Consume the PQ on ``irq_pq``: clear pip, read pqt, report each record,
        advance pqh; after pqof/pqmf discard every partial and clear the bit."""
        pip = _bit("ipsr", "pip")
        errors = _bit("pqcsr", "pqof") | _bit("pqcsr", "pqmf")
        while not self.stopping:
            await self.engine.wait_irq("pq")
            await self.engine.jitter()
            await self._wr("ipsr", pip)
            csr = await self._rd("pqcsr")
            tail = await self._rd("pqt")
            done = 0
            while self.pq_head != tail:
                raw = await self.engine.mem_read(self.layout.pq + self.pq_head * PQ_RECORD_BYTES,
                                                 PQ_RECORD_BYTES)
                record = _PQ.unpack(int.from_bytes(raw, "little"))
                await self.report_device_fault(record, self.pq_serial)
                self.pq_head = (self.pq_head + 1) % self.pq_size
                self.pq_serial += 1
                self.counts["records"] += 1
                self.pq_progress.set()
                done += 1
                if done % self.pq_batch == 0:
                    await self._wr("pqh", self.pq_head)
            await self._wr("pqh", self.pq_head)
            if csr & errors:
                self.counts["pq_errors"] += 1
                await self.discard_all_partials()
                await self._wr("pqcsr", REG["pqcsr"].encode(pqen=1, pie=1) | (csr & errors))

    async def discard_all_partials(self):
        for param in list(self.params.values()):
            async with param.lock:
                param.partials.clear()

    async def fq_servicer(self):
        """Consume FQ records (counted; page-request faults need no action here)."""
        fip = _bit("ipsr", "fip")
        errors = _bit("fqcsr", "fqof") | _bit("fqcsr", "fqmf")
        while not self.stopping:
            await self.engine.wait_irq("fq")
            await self._wr("ipsr", fip)
            csr = await self._rd("fqcsr")
            tail = await self._rd("fqt")
            while self.fq_head != tail:
                self.fq_head = (self.fq_head + 1) % self.fq_size
                self.counts["fq_records"] += 1
            await self._wr("fqh", self.fq_head)
            if csr & errors:
                await self._wr("fqcsr", REG["fqcsr"].encode(fqen=1, fie=1) | (csr & errors))

    def get_fault_param(self, did):
        """Lock-free lookup; takes a reference (None if the device has none)."""
        param = self.params.get(did)
        if param is not None:
            param.refs += 1
        return param

    def put_fault_param(self, param):
        param.refs -= 1

    async def report_device_fault(self, record, serial):
        """Step 6.1: one PQ record."""
        event = FaultEvent(record, serial)
        param = self.get_fault_param(record["did"])
        self.obs.fault_reported(record["did"], record, serial, param)
        if param is None:
            return
        try:
            await self.engine.jitter()
            async with param.lock:
                if is_stop_marker(record["pv"], record["l"], record["r"], record["w"]):
                    return
                if not record["l"]:
                    param.partials.append(event)
                    return
                members = [e for e in param.partials
                           if e.key == event.key and e.record["prgi"] == record["prgi"]]
                for e in members:
                    param.partials.remove(e)
                handle = param.handles.get(event.key)
                domain = handle.domain if handle is not None and handle.domain.fault_capable else None
                group = Group(param, members + [event], domain)
                self.counts["groups"] += 1
                if domain is None:
                    self.counts["no_domain"] += 1
                    group.dead = True
                    await self.write_prgr([(group, DriverCode.INVALID)])
                    return
                domain.pending += 1
                param.pending.append(group)
                self.wq.put(group)
        finally:
            self.put_fault_param(param)

    # --- the work queue -----------------------------------------------------------------
    async def worker(self, index):
        while True:
            group = await self.wq.get()
            self.wq_busy += 1
            try:
                await self.engine.jitter()
                await self.handle_group(group)
            finally:
                self.wq_busy -= 1
                self.wq_idle.set()

    async def handle_group(self, group):
        """Step 6.2: run the domain's handler unless the group is dead, then respond."""
        code = None
        if not group.dead:
            code = await self.run_handler(group.domain, group)
        await self.page_response(group, code)

    async def run_handler(self, domain, group):
        self.counts["handlers"] += 1
        self.obs.handler_running(domain, group, "start")
        rng = self.engine.rng
        await self.engine.delay(rng.randint(*domain.handler_time))
        await self.engine.jitter()
        self.obs.handler_running(domain, group, "end")
        x = rng.random()
        if x < domain.failure_rate:
            return DriverCode.FAILURE
        if x < domain.failure_rate + domain.invalid_rate:
            return DriverCode.INVALID
        return DriverCode.SUCCESS

    def mark_dead(self, group):
        group.dead = True

    async def page_response(self, group, code):
        """Respond to ``group`` (the object itself); a dead group's response is
        a no-op.  Either way the domain's pending counter drops."""
        param = group.param
        try:
            await self.engine.jitter()
            async with param.lock:
                if not group.dead:
                    param.pending.remove(group)
                    self.mark_dead(group)
                    await self.write_prgr([(group, code)])
        finally:
            group.domain.pending -= 1
            group.domain.wake.set()

    async def respond_pending(self, param, code, *, key=..., domain=None):
        """Respond ``code`` to (and kill) the device's pending groups, those of
        PASID ``key`` / bound to ``domain`` when given.  Caller holds the device lock."""
        chosen = [g for g in param.pending
                  if (key is ... or g.key == key) and (domain is None or g.domain is domain)]
        for g in chosen:
            param.pending.remove(g)
            self.mark_dead(g)
        await self.write_prgr([(g, code) for g in chosen])

    async def free_domain(self, domain):
        """Step 6.3: wait until no group bound to ``domain`` is pending, then free it."""
        await self.engine.wait_for(lambda: domain.pending == 0, self.bound,
                                   f"{domain.name} pending faults", wake=domain.wake)
        domain.freed = True
        self.obs.domain_freed(domain)

    # --- control path --------------------------------------------------------------------
    async def bind_pasid(self, did, key, domain):
        """Attach ``domain`` to PASID ``key`` (None: requests without PASID) of ``did``."""
        self.bindings.setdefault(did, {})[key] = domain
        param = self.params.get(did)
        if param is not None:
            async with param.lock:
                param.handles[key] = AttachHandle(key, domain)

    async def pri_on(self, did, *, credits=None):
        """Step 6.0."""
        prpr = bool(await self.engine.cfg_read(did, "prpr"))
        param = FaultParam(self.engine, did, prpr)
        self.params[did] = param
        self.obs.params_allocated(did)
        await self.write_device_context(did, en_pri=True, prpr=prpr)
        await self.invalidate_device_context(did)
        await self.fence_responses()
        async with param.lock:
            for key, domain in self.bindings.get(did, {}).items():
                param.handles[key] = AttachHandle(key, domain)
        if credits is None:
            credits = await self.engine.cfg_read(did, "capacity")
        await self.engine.cfg_write(did, "alloc", credits)
        await self.engine.cfg_write(did, "enable", 1)

    async def pri_off(self, did):
        """Step 6.4: detach, disable, drain, answer, fence, turn PRI off, release."""
        param = self.params[did]
        async with param.lock:
            param.handles.clear()
        await self.engine.jitter()
        await self.engine.cfg_write(did, "enable", 0)
        await self.engine.jitter()
        await self.drain_page_requests()
        async with param.lock:
            await self.respond_pending(param, DriverCode.INVALID)
            param.partials.clear()
        await self.engine.jitter()
        await self.fence_responses()
        self.obs.pri_off_done(did, await self.engine.cfg_read(did, "stopped"))
        await self.write_device_context(did, en_pri=False, prpr=False)
        await self.invalidate_device_context(did)
        await self.fence_responses()
        self.release_params(did)

    def release_params(self, did):
        param = self.params.pop(did)
        param.released = True
        self.obs.params_released(did, param)

    async def recover_device(self, did):
        """After RF: PRI off, Reset the device's PRI, PRI on again."""
        await self.pri_off(did)
        await self.engine.cfg_write(did, "reset", 1)
        await self.pri_on(did)

    async def replace_domain(self, did, key, new_domain):
        """Step 6.5: atomic replace with light flush; returns the old domain."""
        param = self.params[did]
        self.bindings.setdefault(did, {})[key] = new_domain
        async with param.lock:
            old = param.handles.get(key)
            param.handles[key] = AttachHandle(key, new_domain)
            if old is not None:
                await self.respond_pending(param, DriverCode.SUCCESS, key=key, domain=old.domain)
            param.partials[:] = [e for e in param.partials if e.key != key]
        return None if old is None else old.domain

    async def pasid_teardown(self, did, key):
        """Step 6.6 (the device has stopped the PASID)."""
        param = self.params[did]
        self.bindings.get(did, {}).pop(key, None)
        async with param.lock:
            param.handles.pop(key, None)
        await self.engine.jitter()
        await self.drain_page_requests()
        async with param.lock:
            await self.respond_pending(param, DriverCode.INVALID, key=key)
            param.partials[:] = [e for e in param.partials if e.key != key]
        await self.engine.jitter()
        await self.fence_responses()

    async def flush_work_queue(self):
        """Wait until the work queue is empty and no worker is busy (bounded)."""
        await self.engine.wait_for(lambda: not len(self.wq) and not self.wq_busy, self.bound,
                                   "the work queue to flush", wake=self.wq_idle)


class ReviewedDriver(SeedDriver):
    """The policy the seed reviewed (``iopf_queue_discard_dev_pasid``): no
    detach first and no fence against the hardware's queue; flush the work
    queue, then discard pending faults and partials without responding."""

    name = "reviewed"

    async def drain_page_requests(self):
        await self.flush_work_queue()

    async def respond_pending(self, param, code, *, key=..., domain=None):
        for g in [g for g in param.pending
                  if (key is ... or g.key == key) and (domain is None or g.domain is domain)]:
            param.pending.remove(g)
            self.mark_dead(g)

    async def pri_off(self, did):
        param = self.params[did]
        await self.engine.cfg_write(did, "enable", 0)
        await self.drain_page_requests()
        async with param.lock:
            await self.respond_pending(param, DriverCode.INVALID)
            param.partials.clear()
            param.handles.clear()
        self.obs.pri_off_done(did, await self.engine.cfg_read(did, "stopped"))
        await self.write_device_context(did, en_pri=False, prpr=False)
        await self.invalidate_device_context(did)
        await self.fence_responses()
        self.release_params(did)

    async def pasid_teardown(self, did, key):
        param = self.params[did]
        self.bindings.get(did, {}).pop(key, None)
        await self.drain_page_requests()
        async with param.lock:
            await self.respond_pending(param, DriverCode.INVALID, key=key)
            param.partials[:] = [e for e in param.partials if e.key != key]
            param.handles.pop(key, None)


#: The named policies the command line and the tests select.
POLICIES = {"seed": SeedDriver, "reviewed": ReviewedDriver}

"""PCIe PRI endpoint model (DESIGN.md §5).

A :class:`Device` issues page requests on ``page_req`` through its engine and
takes PRG responses from ``prg_resp`` (``on_prg_response``).  Its PRI
capability is reached through the engine's configuration access
(``cfg_read``/``cfg_write``) with these fields:

``enable`` (RW)
    Writing 0: no new request; returns once none of the device's requests is
    still waiting on ``page_req``; unfinished groups are abandoned (credits
    freed, no answer expected), finished ones may still be answered.
``reset`` (W)
    Writing 1 (only with ``enable`` 0; else ignored) clears RF and UPRGI and
    forgets outstanding groups (a lost group if one was finished: §7.1).
``rf``, ``uprgi`` (RO)
    Response Failure received; unexpected PRG index received.
``stopped`` (RO)
    ``enable`` is 0 and no finished group is outstanding.
``prpr`` (RO)
    "PRG Response PASID Required".
``alloc`` (RW)
    Outstanding-request allocation: the credits the device may hold.

A group is a run of requests with one PRGI ending with L=1; each request
holds a credit until its group is answered; a PRGI is reused only after its
group is answered (allocated per device, or per PASID when ``prgi_per_pasid``,
which needs ``prpr``).  Success: the accesses are retried (they may fault
again, as a new group); Invalid Request: the accesses fail; Response Failure
or a reserved code: RF is set, no more requests, outstanding groups forgotten.
Responses after RF are ignored.  A response matching no outstanding finished
group sets UPRGI and is discarded.

Each group carries the ``epoch`` of its PASID (advanced by
:meth:`Device.assign_pasid` when the PASID is given to a new user), so the
checker can tell a previous user's response from the current one's.
"""

from prifence.formats import ResponseCode

from .engine import DEFAULT_BOUND

__all__ = ["Device", "DeviceGroup"]

_PRGI_SPACE = 512


class DeviceGroup:
    """One page-request group as the device sees it."""
    __slots__ = ("device", "pv", "pid", "prgi", "epoch", "size", "sent", "finished",
                 "abandoned", "answered", "addrs", "serial", "last_offered")

    def __init__(self, device, pv, pid, prgi, epoch, size, serial):
        self.device, self.pv, self.pid, self.prgi = device, pv, pid, prgi
        self.epoch, self.size, self.serial = epoch, size, serial
        self.sent = 0
        self.finished = self.abandoned = self.answered = False
        self.last_offered = False     # L=1 is waiting on page_req: it will be sent
        self.addrs = []

    def __repr__(self):
        pasid = f"pasid {self.pid:#x}@{self.epoch}" if self.pv else "no pasid"
        return f"<group {self.device.name} #{self.serial} prgi {self.prgi} {pasid}>"


class Device:
    """A PCIe function with a PRI capability (see the module docstring).

    Keyword-only parameters: ``did`` (device id, 24 bits), ``pasids`` (the
    PASIDs it starts with; ``None`` in the list means requests without a
    PASID), ``prpr``, ``prgi_per_pasid``, ``credits`` (capacity), ``prgi_count``
    (size of the PRGI pool, to force reuse), ``group_size`` (lo, hi),
    ``gap`` (lo, hi cycles between groups of one stream), ``streams`` (groups
    issued concurrently), ``max_groups`` (budget; None = unbounded),
    ``pages`` (distinct page addresses).
    """

    def __init__(self, engine, *, did, pasids=(1,), prpr=False, prgi_per_pasid=False,
                 credits=16, prgi_count=_PRGI_SPACE, group_size=(1, 3), gap=(0, 40),
                 streams=2, max_groups=None, pages=64, name=None, bound=DEFAULT_BOUND):
        if not isinstance(did, int) or not 0 <= did < 1 << 24:
            raise TypeError(f"did must be a 24-bit int, not {did!r}")
        if prgi_per_pasid and not prpr:
            raise ValueError("PRGIs may be allocated per PASID only for a device whose responses carry the PASID (prpr)")
        if not isinstance(credits, int) or credits < 1:
            raise TypeError(f"credits must be a positive int, not {credits!r}")
        if not isinstance(prgi_count, int) or not 1 <= prgi_count <= _PRGI_SPACE:
            raise TypeError(f"prgi_count must be in 1..{_PRGI_SPACE}, not {prgi_count!r}")
        lo, hi = group_size
        if not 1 <= lo <= hi or hi > credits:
            raise ValueError(f"group_size must be (lo, hi) with 1 <= lo <= hi <= credits, not {group_size!r}")
        self.engine = engine
        self.rng = engine.rng
        self.obs = engine.observer
        self.did = did
        self.name = name or f"dev{did:#x}"
        self.prpr = bool(prpr)
        self.prgi_per_pasid = bool(prgi_per_pasid)
        self.capacity = credits
        self.alloc = 0
        self.prgi_count = prgi_count
        self.group_size = group_size
        self.gap = gap
        self.streams = streams
        self.max_groups = max_groups
        self.pages = pages
        self.bound = bound

        self.enable = False
        self.rf = False
        self.uprgi = False
        self.active = {p: True for p in pasids}       # PASIDs the device issues for
        self.epoch = {p: 0 for p in pasids}
        self.groups = []                                # outstanding (unanswered, not abandoned)
        self.used = 0                                   # credits held
        self.waiting = {}                               # PASID -> requests waiting on page_req
        self.issued_groups = 0
        self.serial = 0
        self.counts = {"requests": 0, "groups": 0, "stop_markers": 0, "success": 0,
                       "invalid": 0, "failure": 0, "uprgi": 0, "ignored": 0, "abandoned": 0}
        self.changed = engine.event()
        self.retry = []                                 # pages a Success asked to retry
        self._tasks = []
        engine.attach_device(did, self)

    def __repr__(self):
        return f"<Device {self.name}>"

    # --- state -------------------------------------------------------------------
    def outstanding_finished(self):
        return [g for g in self.groups if g.finished]

    @property
    def stopped(self):
        return not self.enable and not self.outstanding_finished()

    def _waiting_total(self):
        return sum(self.waiting.values())

    def _release(self, group):
        self.groups.remove(group)
        self.used -= group.size
        self.changed.set()

    def _abandon(self, pred):
        # A group whose L=1 is already offered on page_req is not abandoned: the
        # offer cannot be withdrawn, so the group finishes when it is accepted.
        for g in [g for g in self.groups if not g.finished and not g.last_offered and pred(g)]:
            g.abandoned = True
            self.counts["abandoned"] += 1
            self._release(g)

    # --- configuration access (through the engine) ---------------------------------------
    def cfg_read(self, name):
        if name == "stopped":
            return self.stopped
        if name in ("enable", "rf", "uprgi", "prpr", "alloc"):
            return getattr(self, name)
        if name == "capacity":
            return self.capacity
        raise KeyError(f"PRI capability has no field {name!r}")

    async def cfg_write(self, name, value):
        if name == "enable":
            if value:
                self.enable = True
                self.changed.set()
                return
            self.enable = False
            self._abandon(lambda g: True)
            self.changed.set()
            await self.engine.wait_for(lambda: self._waiting_total() == 0, self.bound,
                                       f"{self.name} requests to leave page_req", wake=self.changed)
        elif name == "reset":
            if value and not self.enable:
                lost = [] if self.rf else self.outstanding_finished()
                self.obs.device_reset(self, lost)
                self.rf = self.uprgi = False
                for g in list(self.groups):
                    self._release(g)
        elif name == "alloc":
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"alloc must be a non-negative int, not {value!r}")
            self.alloc = min(value, self.capacity)
            self.changed.set()
        else:
            raise KeyError(f"PRI capability field {name!r} is not writable")

    # --- PASIDs (the device driver's side) ---------------------------------------------
    async def stop_pasid(self, pid, *, stop_marker=False):
        """Stop using PASID ``pid`` (DESIGN §5): no new request for it, its
        unfinished groups abandoned; returns once none of its requests waits on
        ``page_req``, then either sends a Stop Marker or waits (bounded) for its
        finished groups to be answered."""
        self.active[pid] = False
        self._abandon(lambda g: g.pv and g.pid == pid)
        self.changed.set()
        await self.engine.wait_for(lambda: self.waiting.get(pid, 0) == 0, self.bound,
                                   f"{self.name} PASID {pid:#x} requests to leave page_req",
                                   wake=self.changed)
        if stop_marker and self.enable and not self.rf:
            self.counts["stop_markers"] += 1
            req = dict(did=self.did, pv=1, pid=pid, priv=0, exec=0, r=0, w=0, l=1, prgi=0, addr=0)
            self.waiting[pid] = self.waiting.get(pid, 0) + 1
            try:
                await self.engine.send_page_request(req, tag=None)
            finally:
                self.waiting[pid] -= 1
                self.changed.set()
        else:
            await self.engine.wait_for(
                lambda: self.rf or not any(g.finished and g.pv and g.pid == pid for g in self.groups),
                self.bound, f"{self.name} PASID {pid:#x} finished groups answered", wake=self.changed)

    def assign_pasid(self, pid):
        """Give PASID ``pid`` to a new user (its epoch advances) and issue for it."""
        self.epoch[pid] = self.epoch.get(pid, -1) + 1
        self.active[pid] = True
        self.obs.pasid_reassigned(self, pid, self.epoch[pid])
        self.changed.set()

    # --- request generation ----------------------------------------------------------
    def start(self):
        """Spawn the request streams."""
        for i in range(self.streams):
            self._tasks.append(self.engine.spawn(self._stream(i), f"{self.name}.stream{i}"))

    def _free_prgi(self, pv, pid):
        if self.prgi_per_pasid:
            used = {g.prgi for g in self.groups if g.pv == pv and g.pid == pid}
        else:
            used = {g.prgi for g in self.groups}
        if len(used) >= self.prgi_count:
            return None
        while True:            # at most `credits` of prgi_count are used: few draws
            prgi = self.rng.randrange(self.prgi_count)
            if prgi not in used:
                return prgi

    def _budget_left(self):
        return self.max_groups is None or self.issued_groups < self.max_groups

    async def _stream(self, index):
        rng = self.rng
        while True:
            await self.engine.delay(rng.randint(*self.gap))
            if not self._budget_left():
                return
            active = [p for p, on in self.active.items() if on]
            size = rng.randint(*self.group_size)
            if not (self.enable and not self.rf and active and self.used + size <= self.alloc):
                self.changed.clear()
                await self.changed.wait()
                continue
            key = rng.choice(active)
            pv, pid = (0, 0) if key is None else (1, key)
            prgi = self._free_prgi(pv, pid)
            if prgi is None:
                self.changed.clear()
                await self.changed.wait()
                continue
            self.serial += 1
            group = DeviceGroup(self, pv, pid, prgi, self.epoch[key], size, self.serial)
            self.groups.append(group)
            self.used += size
            self.issued_groups += 1
            self.counts["groups"] += 1
            for i in range(size):
                if group.abandoned or not self.enable or self.rf or not self.active.get(key):
                    break
                last = i == size - 1
                r, w = rng.choice(((1, 0), (0, 1), (1, 1)))
                addr = self.retry.pop(0) if self.retry else rng.randrange(self.pages)
                req = dict(did=self.did, pv=pv, pid=pid, priv=pv and rng.randrange(2),
                           exec=pv and r and rng.randrange(2), r=r, w=w, l=int(last),
                           prgi=prgi, addr=addr)
                self.waiting[key] = self.waiting.get(key, 0) + 1
                group.last_offered = last
                try:
                    await self.engine.send_page_request(req, tag=group)
                finally:
                    self.waiting[key] -= 1
                    self.changed.set()
                self.counts["requests"] += 1
                group.sent += 1
                group.addrs.append(addr)
                if last:
                    group.finished = True
                    self.obs.group_finished(self, group)
                elif not last:
                    await self.engine.delay(rng.randint(0, 6))

    # --- responses -------------------------------------------------------------------
    def _match(self, resp):
        for g in self.groups:
            if not g.finished or g.prgi != resp["prgi"]:
                continue
            if self.prpr and g.pv and not (resp["pv"] and resp["pid"] == g.pid):
                continue
            if self.prgi_per_pasid and not g.pv and resp["pv"]:
                continue
            return g
        return None

    def on_prg_response(self, resp):
        """A PRG response on ``prg_resp`` for this device (always accepted)."""
        if self.rf:
            self.counts["ignored"] += 1
            self.obs.response_delivered(self, resp, None, "ignored")
            return
        group = self._match(resp)
        if group is None:
            self.uprgi = True
            self.counts["uprgi"] += 1
            self.obs.response_delivered(self, resp, None, "uprgi")
            return
        group.answered = True
        self._release(group)
        code = resp["code"]
        if code == ResponseCode.SUCCESS:
            self.counts["success"] += 1
            outcome = "success"
            self.retry.extend(group.addrs)              # the accesses are retried
        elif code == ResponseCode.INVALID_REQUEST:
            self.counts["invalid"] += 1
            outcome = "invalid"
        else:
            self.counts["failure"] += 1
            outcome = "failure"
        self.obs.response_delivered(self, resp, group, outcome)
        if outcome == "failure":
            self.rf = True
            for g in list(self.groups):
                self._release(g)

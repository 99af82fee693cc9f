"""Named scenarios: driver + devices + hardware + checker, one seed each.

:func:`run_scenario` builds an engine (the transaction-level one by default)
with a :class:`~sw_model.checker.Checker` as its observer, brings up the
driver policy, runs the scenario to its end (every device's PRI turned off),
runs the checker's final check and returns a :class:`Result`.  Everything
random in a run comes from the engine's RNG, so ``(scenario, policy, seed)``
replays exactly::

    python -m sw_model.run --scenario pri_off --policy seed --seed 1234

Scenarios (:data:`SCENARIOS`):

steady            1–2 devices faulting; handlers sometimes answer Invalid or
                  Failure (RF, then PRI off / Reset / PRI on).
pri_off           PRI turned off and on again with groups pending and requests
                  in flight.
pasid_teardown    PASIDs stopped (waiting or with a Stop Marker), torn down and
                  given to new users, with a small PRGI pool to force reuse.
atomic_replace    a PASID's domain replaced while faulting; the old one freed.
overflow_storm    a 4-entry PQ under fast devices, and a transient PQ store
                  fault window (pqof and pqmf recovery).
several_devices   four devices (one answering with PASID and PRGIs per
                  PASID, one whose requests without PASID meet a domain that
                  takes no faults) and a random mix of the operations above.
cmd_errors        illegal commands and a transient CQ fetch-fault window
                  injected while faulting (cmd_ill / cqmf recovery).
"""

import time
from dataclasses import dataclass, field

from .checker import Checker
from .device import Device
from .driver import POLICIES, Domain, Layout
from .engine import Violation
from .tlm import TlmEngine

__all__ = ["Result", "SCENARIOS", "run_scenario", "run_scenario_async", "build_scenario",
           "tlm_engine"]

#: Cycle limit of one run (a run past it is a hang).
RUN_LIMIT = 3_000_000


@dataclass
class Result:
    """Outcome of one scenario run."""
    scenario: str
    policy: str
    seed: int
    ok: bool
    violation: Violation | None
    cycles: int
    counts: dict = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def replay(self):
        return f"python -m sw_model.run --scenario {self.scenario} --policy {self.policy} --seed {self.seed}"

    def __str__(self):
        status = "ok" if self.ok else f"VIOLATION {self.violation}"
        return f"{self.scenario}/{self.policy} seed={self.seed}: {status} ({self.cycles} cycles)"


def tlm_engine(*, seed, observer, **kw):
    """The default engine factory: a :class:`~sw_model.tlm.TlmEngine`."""
    return TlmEngine(seed=seed, observer=observer, **kw)


class Context:
    """What a scenario body works with."""

    def __init__(self, engine, driver, checker, scale, options):
        self.engine = engine
        self.rng = engine.rng
        self.driver = driver
        self.checker = checker
        self.scale = scale
        self.options = options
        self.devices = []
        self.ctl = {}
        self.domain_count = 0
        self.done = False
        self.domain_kw = {}
        self.counts = {"pri_off_with_pending": 0, "pri_off_with_inflight": 0,
                       "teardown_with_pending": 0, "replace_with_pending": 0}

    def _note(self, key, device):
        """Count operations that start with groups pending in the driver or
        requests in flight in the hardware (what the scenarios are about)."""
        param = self.driver.params.get(device.did)
        if param is not None and param.pending:
            self.counts[key + "_with_pending"] = self.counts.get(key + "_with_pending", 0) + 1
        hw = getattr(self.engine, "hw", None)
        if device._waiting_total() or (hw is not None and hw.accepted > hw.retired):
            self.counts[key + "_with_inflight"] = self.counts.get(key + "_with_inflight", 0) + 1

    def new_domain(self, **kw):
        self.domain_count += 1
        opts = dict(self.domain_kw)
        opts.update(kw)
        return Domain(self.engine, f"dom{self.domain_count}", **opts)

    async def add_device(self, did, *, pasids=(1, 2), max_groups=30, blocking=(), **kw):
        """A device issuing for ``pasids``, each bound to a new domain (one that
        cannot take faults for the keys in ``blocking``), with PRI on."""
        for knob in ("handler_time", "failure_rate"):
            if knob in self.options:
                self.domain_kw[knob] = self.options[knob]
        device = Device(self.engine, did=did, pasids=pasids,
                        max_groups=max(1, int(max_groups * self.scale)), **kw)
        self.devices.append(device)
        self.checker.add_device(device)
        self.ctl[did] = self.engine.lock()
        for key in pasids:
            await self.driver.bind_pasid(did, key, self.new_domain(fault_capable=key not in blocking))
        await self.driver.pri_on(did)
        device.start()
        return device

    async def rf_watch(self):
        """Recover devices that set RF (PRI off, Reset, PRI on)."""
        while not self.done:
            await self.engine.delay(150)
            for device in self.devices:
                if self.done:
                    return
                if await self.engine.cfg_read(device.did, "rf"):
                    async with self.ctl[device.did]:
                        if device.did in self.driver.params and device.rf:
                            await self.driver.recover_device(device.did)

    async def settle(self, bound=200_000):
        """Wait until every device has spent its budget (or is in RF / disabled)."""
        await self.engine.wait_for(
            lambda: all(not d._budget_left() or d.rf or not d.enable for d in self.devices),
            bound, "devices to spend their request budget", wake=None)

    async def finish(self):
        await self.settle()
        self.done = True
        for device in self.devices:
            async with self.ctl[device.did]:
                if device.did in self.driver.params:
                    await self.driver.pri_off(device.did)
        self.checker.final()

    async def pri_cycle(self, device):
        async with self.ctl[device.did]:
            if device.did in self.driver.params:
                self._note("pri_off", device)
                await self.driver.pri_off(device.did)
                await self.engine.cfg_write(device.did, "reset", 1)
                await self.driver.pri_on(device.did)

    async def replace(self, device, key):
        async with self.ctl[device.did]:
            if device.did not in self.driver.params:
                return
            self._note("replace", device)
            old = await self.driver.replace_domain(device.did, key, self.new_domain())
        if old is not None:
            await self.driver.free_domain(old)

    async def teardown(self, device, key):
        async with self.ctl[device.did]:
            if device.did not in self.driver.params or device.rf:
                return
            old = self.driver.bindings.get(device.did, {}).get(key)
            await device.stop_pasid(key, stop_marker=self.rng.random() < 0.5)
            self._note("teardown", device)
            await self.driver.pasid_teardown(device.did, key)
            if old is not None:
                await self.driver.free_domain(old)
            # The next user attaches its domain, then the device works for it.
            await self.driver.bind_pasid(device.did, key, self.new_domain())
            device.assign_pasid(key)


async def _steady(ctx):
    ctx.domain_kw = dict(failure_rate=0.02)
    for i in range(ctx.rng.randint(1, 2)):
        await ctx.add_device(1 + i, prpr=ctx.rng.random() < 0.5)
    await ctx.finish()


async def _pri_off(ctx):
    ctx.domain_kw = dict(handler_time=(10, 120))
    devs = [await ctx.add_device(1 + i, max_groups=40, streams=3, gap=(0, 12))
            for i in range(ctx.rng.randint(1, 2))]
    for _ in range(ctx.rng.randint(1, 3)):
        await ctx.engine.delay(ctx.rng.randint(30, 300))
        await ctx.pri_cycle(ctx.rng.choice(devs))
    await ctx.finish()


async def _pasid_teardown(ctx):
    ctx.domain_kw = dict(handler_time=(10, 200))
    prpr = ctx.rng.random() < 0.5
    pasids = tuple(ctx.options.get("pasids", (1, 2, 3)))
    prgi_count = ctx.options.get("prgi_count") or ctx.rng.choice((1, 2, 4))
    dev = await ctx.add_device(3, pasids=pasids, prpr=prpr, prgi_count=prgi_count, max_groups=40,
                               prgi_per_pasid=prpr and ctx.rng.random() < 0.5)
    for _ in range(ctx.rng.randint(1, 3)):
        await ctx.engine.delay(ctx.rng.randint(20, 300))
        await ctx.teardown(dev, ctx.rng.choice(pasids))
    await ctx.finish()


async def _atomic_replace(ctx):
    ctx.domain_kw = dict(handler_time=(10, 150))
    dev = await ctx.add_device(4, pasids=(1, 2), max_groups=40, prpr=ctx.rng.random() < 0.5)
    for _ in range(ctx.rng.randint(2, 4)):
        await ctx.engine.delay(ctx.rng.randint(20, 250))
        await ctx.replace(dev, ctx.rng.choice((1, 2)))
    await ctx.finish()


async def _overflow_storm(ctx):
    ctx.domain_kw = dict(handler_time=(5, 40))
    devs = [await ctx.add_device(1 + i, gap=(0, 4), streams=3, max_groups=40) for i in range(2)]
    if ctx.rng.random() < 0.6:
        layout = ctx.driver.layout
        start = ctx.engine.now() + ctx.rng.randint(10, 300)
        ctx.engine.mem.inject_fault(layout.pq, layout.pq + ctx.driver.pq_size * 16, kind="w",
                                    start=start, end=start + ctx.rng.randint(5, 60))
    if ctx.rng.random() < 0.5:
        await ctx.engine.delay(ctx.rng.randint(50, 300))
        await ctx.pri_cycle(ctx.rng.choice(devs))
    await ctx.finish()


async def _several_devices(ctx):
    ctx.domain_kw = dict(handler_time=(5, 100), failure_rate=0.01)
    devs = [
        await ctx.add_device(1, pasids=(1, 2)),
        await ctx.add_device(2, pasids=(1, 7), prpr=True, prgi_per_pasid=True, prgi_count=8),
        await ctx.add_device(0x45, pasids=(None, 5), blocking=(None,)),
        await ctx.add_device(0x7F, pasids=(3,), prpr=True, credits=4, group_size=(1, 4)),
    ]
    for _ in range(ctx.rng.randint(2, 4)):
        await ctx.engine.delay(ctx.rng.randint(20, 300))
        dev = ctx.rng.choice(devs)
        op = ctx.rng.choice(("pri", "replace", "teardown"))
        keys = [k for k in dev.active if k is not None]
        if op == "pri":
            await ctx.pri_cycle(dev)
        elif op == "replace":
            await ctx.replace(dev, ctx.rng.choice(list(dev.active)))
        elif keys:
            await ctx.teardown(dev, ctx.rng.choice(keys))
    await ctx.finish()


async def _cmd_errors(ctx):
    ctx.domain_kw = dict(handler_time=(5, 60))
    devs = [await ctx.add_device(1 + i, max_groups=30) for i in range(2)]
    layout = ctx.driver.layout
    if ctx.rng.random() < 0.5:
        start = ctx.engine.now() + ctx.rng.randint(10, 300)
        ctx.engine.mem.inject_fault(layout.cq, layout.cq + ctx.driver.cq_size * 16, kind="r",
                                    start=start, end=start + ctx.rng.randint(5, 80))
    for _ in range(ctx.rng.randint(1, 3)):
        await ctx.engine.delay(ctx.rng.randint(20, 300))
        # An illegal command (opcode 0x7F): the CQ stops on it until the driver recovers.
        await ctx.driver.submit([(0x7F, None)])
        await ctx.driver.fence_responses()
    if ctx.rng.random() < 0.5:
        await ctx.pri_cycle(ctx.rng.choice(devs))
    await ctx.finish()


#: Scenario name → body.
SCENARIOS = {
    "steady": _steady,
    "pri_off": _pri_off,
    "pasid_teardown": _pasid_teardown,
    "atomic_replace": _atomic_replace,
    "overflow_storm": _overflow_storm,
    "several_devices": _several_devices,
    "cmd_errors": _cmd_errors,
}

_LAYOUTS = {"overflow_storm": dict(pq_log2sz_1=1)}


def build_scenario(engine, checker, name, policy="seed", *, scale=1.0, driver_kw=None, options=None):
    """Set up scenario ``name`` on ``engine`` (built with ``checker`` as its
    observer): returns ``(driver, ctx, main)`` where ``await main()`` runs it."""
    body = _scenario(name)
    policy_cls = _policy(policy)
    kw = dict(driver_kw or {})
    kw.setdefault("layout", Layout(**_LAYOUTS.get(name, {})))
    driver = policy_cls(engine, **kw)
    ctx = Context(engine, driver, checker, scale, dict(options or {}))

    async def main():
        await driver.start()
        engine.spawn(ctx.rf_watch(), "scenario.rf_watch")
        await body(ctx)

    return driver, ctx, main


async def run_scenario_async(engine, checker, name, policy="seed", **kw):
    """Run scenario ``name`` by awaiting it on an engine already built with
    ``checker`` as its observer (how a cocotb bench runs it against the RTL).
    Returns ``(driver, ctx)``; a broken invariant raises
    :class:`~sw_model.engine.Violation`."""
    driver, ctx, main = build_scenario(engine, checker, name, policy, **kw)
    await main()
    return driver, ctx


def _scenario(name):
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def _policy(policy):
    if isinstance(policy, str):
        try:
            return POLICIES[policy]
        except KeyError:
            raise ValueError(f"no policy {policy!r}; known: {', '.join(POLICIES)}") from None
    return policy


def run_scenario(name, policy="seed", seed=0, *, engine_factory=tlm_engine, scale=1.0,
                 until=RUN_LIMIT, driver_kw=None, options=None):
    """Run scenario ``name`` with driver ``policy`` (a name of
    :data:`~sw_model.driver.POLICIES` or a driver class) and ``seed``.

    ``engine_factory(seed=, observer=)`` builds the engine (it must offer
    ``run(main, until=)``); ``scale`` multiplies the request budgets;
    ``options`` are scenario knobs: ``handler_time`` (lo, hi) and
    ``failure_rate`` of every domain; ``pasids`` and ``prgi_count`` of
    ``pasid_teardown``."""
    _scenario(name)
    policy_cls = _policy(policy)
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {seed!r}")
    checker = Checker()
    engine = engine_factory(seed=seed, observer=checker)
    mem = getattr(engine, "mem", None)
    checker.bind(engine, peek=mem.read if mem is not None else None)
    driver, ctx, main = build_scenario(engine, checker, name, policy_cls, scale=scale,
                                       driver_kw=driver_kw, options=options)
    started = time.perf_counter()
    violation = None
    try:
        engine.run(main(), until=until)
    except Violation as v:
        violation = v
    counts = {"requests": sum(d.counts["requests"] for d in ctx.devices),
              "groups": sum(d.counts["groups"] for d in ctx.devices)}
    for d in ctx.devices:
        for k in ("success", "invalid", "failure", "uprgi", "stop_markers", "abandoned"):
            counts[k] = counts.get(k, 0) + d.counts[k]
    counts.update(ctx.counts)
    counts.update({f"drv_{k}": v for k, v in driver.counts.items()})
    hw = getattr(engine, "hw", None)
    if hw is not None:
        counts.update({f"hw_{k}": v for k, v in hw.counts.items()})
    pname = getattr(policy_cls, "name", policy_cls.__name__)
    return Result(name, pname, seed, violation is None, violation, engine.now(), counts,
                  time.perf_counter() - started)

"""Deliberately broken variants, to show that the checker catches each
invariant of DESIGN.md §7.

Each driver variant is a small subclass of :class:`~sw_model.driver.SeedDriver`
overriding one step; each hardware variant a small subclass of
:class:`~sw_model.tlm.Hardware`.  :data:`SELF_TESTS` lists, per invariant, a
variant, the scenario (and options) that exposes it, and the invariants its
runs may trip (the first listed is the one it must trip on some seed).  The
command line replays any of them::

    python -m sw_model.run --scenario atomic_replace --policy eager_free --seed 3
    python -m sw_model.run --scenario overflow_storm --hardware early_pd --seed 7
"""

from dataclasses import dataclass, field

from prifence.formats import PrgrCmd, codec

from .driver import DriverCode, ReviewedDriver, SeedDriver
from .tlm import Hardware

__all__ = ["DoubleResponseDriver", "TrustEnableDriver", "StaleResponseDriver",
           "EagerFreeDriver", "ReservedCodeDriver", "EarlyPdFenceHardware",
           "OutOfOrderPublishHardware", "OverwritingHardware", "DRIVER_VARIANTS",
           "HARDWARE_VARIANTS", "SelfTest", "SELF_TESTS"]


class DoubleResponseDriver(SeedDriver):
    """``page_response`` does not check dead: a group answered by
    ``respond_pending`` is answered again by its work item."""

    name = "double_response"

    async def page_response(self, group, code):
        param = group.param
        try:
            async with param.lock:
                if group in param.pending:
                    param.pending.remove(group)
                await self.write_prgr([(group, code or DriverCode.INVALID)])
        finally:
            group.domain.pending -= 1
            group.domain.wake.set()


class TrustEnableDriver(SeedDriver):
    """PRI off trusting the device's Enable: no drain of the hardware's
    queue and no check that the device stopped, before the release."""

    name = "trust_enable"

    async def pri_off(self, did):
        param = self.params[did]
        async with param.lock:
            param.handles.clear()
        await self.engine.cfg_write(did, "enable", 0)
        async with param.lock:
            await self.respond_pending(param, DriverCode.INVALID)
            param.partials.clear()
        await self.write_device_context(did, en_pri=False, prpr=False)
        await self.invalidate_device_context(did)
        await self.fence_responses()
        self.release_params(did)


class StaleResponseDriver(SeedDriver):
    """``respond_pending`` answers groups but leaves them alive, so the work
    item still running their handler answers them again later — after the
    PASID may have been given to its next user."""

    name = "stale_response"

    def mark_dead(self, group):
        pass

    async def page_response(self, group, code):
        param = group.param
        try:
            async with param.lock:
                if not group.dead:
                    if group in param.pending:
                        param.pending.remove(group)
                    group.dead = True
                    await self.write_prgr([(group, code)])
        finally:
            group.domain.pending -= 1
            group.domain.wake.set()


class EagerFreeDriver(SeedDriver):
    """``free_domain`` does not wait for the domain's pending faults."""

    name = "eager_free"

    async def free_domain(self, domain):
        domain.freed = True
        self.obs.domain_freed(domain)


class ReservedCodeDriver(SeedDriver):
    """Maps the driver's Failure to 0xE instead of 0xF (a reserved code)."""

    name = "reserved_code"

    def prgr_command(self, group, code):
        word = super().prgr_command(group, code)
        if code is DriverCode.FAILURE:
            c = codec(PrgrCmd)
            word = (word & ~c.mask("code")) | (0xE << c.offset("code"))
        return word


class EarlyPdFenceHardware(Hardware):
    """``IOFENCE.PD`` completes as ``IOFENCE.C`` does, without waiting for the
    page requests accepted before it to retire."""

    async def _fence(self, index, kind, f):
        await super()._fence(index, "iofence_c" if kind == "iofence_pd" else kind, f)


class OutOfOrderPublishHardware(Hardware):
    """Publishes each PQ record as soon as its own write is acknowledged,
    ahead of earlier records still in flight."""

    def _pq_publish(self):
        pq, pending = self.pq, self.pq_pending
        for entry in [e for e in pending if e.acked and not e.fault]:
            pending.remove(entry)
            pq.t = (entry.slot + 1) & pq.mask
            self.obs.pq_published(entry.seq, pq.addr(entry.slot), entry.record)
            self._dispose(entry.seq)
            self._pq_notify()
        if pending and pending[0].acked:
            super()._pq_publish()


class OverwritingHardware(Hardware):
    """The full test ignores records whose writes are still in flight, so a
    burst can overwrite records software has not consumed."""

    def _pq_tail_full(self):
        pq = self.pq
        tail = (pq.t + len(self.pq_pending)) & pq.mask
        return tail, ((pq.t + 1) & pq.mask) == pq.h


#: Driver policies for the command line, the seed's and the reviewed included.
DRIVER_VARIANTS = {cls.name: cls for cls in (
    SeedDriver, ReviewedDriver, DoubleResponseDriver, TrustEnableDriver, StaleResponseDriver,
    EagerFreeDriver, ReservedCodeDriver)}

#: Hardware models for the command line.
HARDWARE_VARIANTS = {
    "tlm": Hardware,
    "early_pd": EarlyPdFenceHardware,
    "out_of_order_publish": OutOfOrderPublishHardware,
    "overwrite": OverwritingHardware,
}


@dataclass(frozen=True)
class SelfTest:
    """A broken variant, where it shows, and what it may trip."""
    invariant: int
    policy: str
    scenario: str
    hardware: str = "tlm"
    options: dict = field(default_factory=dict)
    may_trip: tuple = ()
    seeds: int = 200


#: One or more broken variants per invariant of §7.
SELF_TESTS = (
    SelfTest(1, "reviewed", "pri_off", may_trip=(1,), seeds=40),
    SelfTest(2, "double_response", "pri_off", may_trip=(2,), seeds=20),
    SelfTest(2, "double_response", "atomic_replace", may_trip=(2,), seeds=20),
    SelfTest(3, "trust_enable", "pri_off", may_trip=(1, 2, 3), seeds=300),
    SelfTest(4, "stale_response", "pasid_teardown", may_trip=(2, 4), seeds=300,
             options={"pasids": (1,), "prgi_count": 1, "handler_time": (200, 600)}),
    SelfTest(5, "eager_free", "atomic_replace", may_trip=(5,), seeds=40),
    SelfTest(6, "seed", "overflow_storm", hardware="early_pd", may_trip=(1, 3, 6), seeds=200),
    SelfTest(6, "seed", "steady", hardware="out_of_order_publish", may_trip=(3, 6), seeds=20),
    SelfTest(6, "seed", "overflow_storm", hardware="overwrite", may_trip=(2, 6), seeds=100),
    SelfTest(7, "reserved_code", "steady", may_trip=(7,), seeds=40),
)

"""The PCIe PRI endpoint model (DESIGN §5), driven without the driver: its
requests are queued by the hardware model and the test answers them."""

import pytest

from prifence.formats import PQ_RECORD_BYTES, PqRecord, codec
from sw_model.device import Device
from sw_model.engine import Observer

from swm_harness import PQ, Harness


class Log(Observer):
    def __init__(self):
        self.events = []

    def group_finished(self, device, group):
        self.events.append(("finished", group))

    def response_delivered(self, device, resp, group, outcome):
        self.events.append((outcome, group))

    def device_reset(self, device, lost):
        self.events.append(("reset", tuple(lost)))


def setup(log2sz_1=5, **dev_kw):
    h = Harness(seed=dev_kw.pop("seed", 11), observer=Log(), mem_latency=(1, 3))
    dev = Device(h.engine, did=1, **dev_kw)
    return h, dev


def records(h):
    n = h.hw.pq.t
    pq = codec(PqRecord)
    return [pq.unpack(int.from_bytes(h.mem.read(PQ + i * PQ_RECORD_BYTES, PQ_RECORD_BYTES), "little"))
            for i in range(n)]


async def enable(h, dev, credits):
    await h.bring_up(log2sz_1=7)
    await h.engine.cfg_write(1, "alloc", credits)
    await h.engine.cfg_write(1, "enable", 1)
    dev.start()


def answer(dev, group, code=0):
    dev.on_prg_response({"did": dev.did, "pv": 0, "pid": 0, "prgi": group.prgi, "code": code})


def test_credits_bound_outstanding_requests_and_groups_end_with_l1():
    h, dev = setup(group_size=(1, 3), gap=(0, 2), streams=3, max_groups=50)

    async def body():
        await enable(h, dev, 4)
        await h.settle(300)
        held = dev.used
        recs = records(h)
        return held, recs, list(dev.groups)
    held, recs, groups = h.run(body())
    assert held <= 4 and len(recs) <= 4 and groups
    # every finished group's records share its PRGI and its last one has L=1
    for g in groups:
        mine = [r for r in recs if r["prgi"] == g.prgi]
        if g.finished:
            assert len(mine) == g.size and mine[-1]["l"] == 1 and all(not r["l"] for r in mine[:-1])


def test_answers_free_credits_and_prgi_reuse_waits_for_the_answer():
    h, dev = setup(prgi_count=2, group_size=(1, 1), gap=(0, 0), streams=2, max_groups=12)

    async def body():
        await enable(h, dev, 8)
        await h.settle(100)
        first = sorted(g.prgi for g in dev.groups)       # the pool is used up: no reuse
        issued = dev.issued_groups
        for g in list(dev.groups):
            answer(dev, g)
        await h.settle(100)
        return first, issued, dev.issued_groups
    first, issued, later = h.run(body())
    assert first == [0, 1] and issued == 2 and later == 4


def test_success_invalid_failure_uprgi_and_responses_after_rf():
    h, dev = setup(group_size=(1, 1), gap=(0, 0), streams=1, max_groups=3)

    async def body():
        await enable(h, dev, 1)
        outcomes = []
        for code in (0x0, 0x1):
            await h.settle(50)
            (g,) = dev.groups
            answer(dev, g, code)
        await h.settle(50)
        (g,) = dev.groups
        dev.on_prg_response({"did": 1, "pv": 0, "pid": 0, "prgi": (g.prgi + 1) % 512, "code": 0})
        outcomes.append(dev.uprgi)
        answer(dev, g, 0xF)
        outcomes.append((dev.rf, list(dev.groups)))
        issued = dev.counts["requests"]
        answer(dev, g, 0)                                  # after RF: ignored
        await h.settle(100)
        outcomes.append(dev.counts["requests"] == issued)
        return outcomes
    outcomes = h.run(body())
    assert outcomes == [True, (True, []), True]
    kinds = [e[0] for e in h.engine.observer.events if e[0] != "finished"]
    assert kinds == ["success", "invalid", "uprgi", "failure", "ignored"]


def test_clearing_enable_abandons_unfinished_groups_and_stopped():
    h, dev = setup(group_size=(3, 3), gap=(0, 0), streams=2, max_groups=10)

    async def body():
        await enable(h, dev, 6)
        await h.settle(4)                     # groups in progress
        await h.engine.cfg_write(1, "enable", 0)
        finished = dev.outstanding_finished()
        stopped_before = await h.engine.cfg_read(1, "stopped")
        for g in finished:
            answer(dev, g)
        return finished, stopped_before, await h.engine.cfg_read(1, "stopped"), dev.used
    finished, before, after, used = h.run(body())
    assert dev.counts["abandoned"] >= 1
    assert before == bool(not finished) and after is True and used == 0


def test_reset_only_with_enable_zero_and_reports_lost_groups():
    h, dev = setup(group_size=(1, 1), gap=(0, 0), streams=1, max_groups=5)

    async def body():
        await enable(h, dev, 2)
        await h.settle(40)
        await h.engine.cfg_write(1, "reset", 1)           # ignored: enabled
        kept = list(dev.groups)
        await h.engine.cfg_write(1, "enable", 0)
        await h.engine.cfg_write(1, "reset", 1)
        return kept, list(dev.groups)
    kept, after = h.run(body())
    assert kept and after == []
    resets = [e for e in h.engine.observer.events if e[0] == "reset"]
    assert resets == [("reset", tuple(kept))]


def test_stop_pasid_with_stop_marker():
    h, dev = setup(pasids=(5, 6), group_size=(1, 2), gap=(0, 3), streams=2, max_groups=20)

    async def body():
        await enable(h, dev, 8)
        await h.settle(30)
        await dev.stop_pasid(5, stop_marker=True)
        await h.settle(30)
        return records(h)
    recs = h.run(body())
    markers = [i for i, r in enumerate(recs) if r["pv"] and r["l"] and not r["r"] and not r["w"]]
    assert len(markers) == 1 and recs[markers[0]]["pid"] == 5
    assert all(r["pid"] != 5 for r in recs[markers[0] + 1:])   # nothing for PASID 5 after it


def test_pasid_epochs_advance_on_reassignment():
    h, dev = setup(pasids=(5,), max_groups=0)
    dev.assign_pasid(5)
    dev.assign_pasid(5)
    assert dev.epoch[5] == 2


def test_bad_configuration_is_rejected():
    h = Harness()
    with pytest.raises(ValueError, match="per PASID"):
        Device(h.engine, did=1, prgi_per_pasid=True)
    with pytest.raises(TypeError, match="did"):
        Device(h.engine, did=1 << 24)
    with pytest.raises(ValueError, match="group_size"):
        Device(h.engine, did=2, credits=2, group_size=(1, 3))
    dev = Device(h.engine, did=3)
    with pytest.raises(KeyError):
        dev.cfg_read("nonsense")
    with pytest.raises(ValueError, match="already attached"):
        Device(h.engine, did=3)

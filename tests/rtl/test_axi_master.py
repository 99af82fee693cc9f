"""The AXI4 memory master (rtl/axi_master.py) on Amaranth's simulator."""

import gc
import warnings

import pytest
from amaranth.sim import Simulator

from rtl.axi_master import AXI_BURST_INCR, AxiMaster


def _sim(dut, bench, cycles=400):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(cycles * 1e-8)


def test_bad_parameters():
    for kwargs, match in (({"read_clients": 0}, "read_clients"), ({"data_width": 32}, "data_width"),
                          ({"write_clients": 17}, "write_clients"), ({"w_order_depth": 2}, "w_order_depth")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # the half-built component is never elaborated
            with pytest.raises(TypeError, match=match):
                AxiMaster(**kwargs)
            gc.collect()


def test_w_follows_aw_order_without_bubbles():
    """Two clients, each with back-to-back 2-beat bursts: W carries whole bursts
    in AW order, one beat per cycle, and AWID names the client."""
    dut = AxiMaster(read_clients=1, write_clients=2)
    bursts = {0: [0x100, 0x110, 0x120], 1: [0x200, 0x210, 0x220]}
    seen_aw, seen_w, w_cycles = [], [], []

    async def bench(ctx):
        axi = dut.axi
        ctx.set(axi.awready, 1)
        ctx.set(axi.wready, 1)
        pending_aw = {j: list(bursts[j]) for j in bursts}
        pending_w = {j: [(a, beat) for a in bursts[j] for beat in range(2)] for j in bursts}
        for cycle in range(60):
            for j in (0, 1):
                port = dut.write[j]
                ctx.set(port.aw.valid, bool(pending_aw[j]))
                if pending_aw[j]:
                    ctx.set(port.aw.p.addr, pending_aw[j][0])
                    ctx.set(port.aw.p.len, 1)
                    ctx.set(port.aw.p.size, 3)
                ctx.set(port.w.valid, bool(pending_w[j]))
                if pending_w[j]:
                    addr, beat = pending_w[j][0]
                    ctx.set(port.w.p.data, addr + beat)
                    ctx.set(port.w.p.strb, 0xFF)
                    ctx.set(port.w.p.last, beat == 1)
            taken_aw = {j: ctx.get(dut.write[j].aw.ready) and bool(pending_aw[j]) for j in (0, 1)}
            taken_w = {j: ctx.get(dut.write[j].w.ready) and bool(pending_w[j]) for j in (0, 1)}
            if ctx.get(axi.awvalid):
                seen_aw.append((ctx.get(axi.awid), ctx.get(axi.awaddr)))
                assert ctx.get(axi.awburst) == AXI_BURST_INCR and ctx.get(axi.awlen) == 1
            if ctx.get(axi.wvalid):
                seen_w.append((ctx.get(axi.wdata), ctx.get(axi.wlast)))
                w_cycles.append(cycle)
            await ctx.tick()
            for j in (0, 1):
                if taken_aw[j]:
                    pending_aw[j].pop(0)
                if taken_w[j]:
                    pending_w[j].pop(0)

    _sim(dut, bench)
    assert sorted(seen_aw) == sorted((j, a) for j in bursts for a in bursts[j])
    # W beats: whole bursts, in the order their AWs were granted.
    want = [(addr + beat, beat == 1) for _, addr in seen_aw for beat in range(2)]
    assert seen_w == want
    # No bubble once W has started: 12 beats in 12 consecutive cycles.
    assert w_cycles == list(range(w_cycles[0], w_cycles[0] + 12))
    # Round-robin: the grants alternate between the clients.
    grants = [j for j, _ in seen_aw]
    assert all(a != b for a, b in zip(grants, grants[1:])), grants


def test_responses_route_by_id():
    dut = AxiMaster(read_clients=2, write_clients=2)

    async def bench(ctx):
        axi = dut.axi
        for j in (0, 1):
            ctx.set(dut.write[j].b.ready, 1)
            ctx.set(dut.read[j].r.ready, 1)
        ctx.set(axi.bvalid, 1)
        ctx.set(axi.bid, 1)
        ctx.set(axi.bresp, 2)
        ctx.set(axi.rvalid, 1)
        ctx.set(axi.rid, 0)
        ctx.set(axi.rdata, 0xDEAD)
        ctx.set(axi.rlast, 1)
        await ctx.delay(1e-9)
        assert not ctx.get(dut.write[0].b.valid) and ctx.get(dut.write[1].b.valid)
        assert ctx.get(dut.write[1].b.p.resp) == 2
        assert ctx.get(dut.read[0].r.valid) and not ctx.get(dut.read[1].r.valid)
        assert ctx.get(dut.read[0].r.p.data) == 0xDEAD
        # The response waits for its own client's ready.
        ctx.set(dut.write[1].b.ready, 0)
        await ctx.delay(1e-9)
        assert not ctx.get(axi.bready)
        ctx.set(axi.bid, 0)
        await ctx.delay(1e-9)
        assert ctx.get(axi.bready)

    _sim(dut, bench, cycles=5)


def test_ar_holds_until_taken():
    """AR is registered: ARVALID stays with the same address until ARREADY."""
    dut = AxiMaster(read_clients=2, write_clients=1)

    async def bench(ctx):
        axi = dut.axi
        ctx.set(dut.read[1].ar.valid, 1)
        ctx.set(dut.read[1].ar.p.addr, 0x1234)
        for _ in range(3):                              # the turn comes round
            if ctx.get(dut.read[1].ar.ready):
                break
            await ctx.tick()
        else:
            raise AssertionError("client 1's AR never taken")
        await ctx.tick()
        assert ctx.get(dut.read[1].ar.ready) == 0       # output register full, slave not ready
        ctx.set(dut.read[1].ar.valid, 0)
        for _ in range(3):
            assert ctx.get(axi.arvalid) and ctx.get(axi.araddr) == 0x1234 and ctx.get(axi.arid) == 1
            await ctx.tick()
        ctx.set(axi.arready, 1)
        await ctx.tick()
        assert not ctx.get(axi.arvalid)

    _sim(dut, bench, cycles=10)


@pytest.mark.parametrize("early", [None, (2,)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_w_order_under_back_pressure(seed, early):
    """Three clients with bursts of 1..4 beats, random client valids and random
    AWREADY/WREADY: every burst's beats arrive whole, in AW order, unchanged."""
    import random
    rng = random.Random(seed)
    dut = AxiMaster(read_clients=1, write_clients=3, w_order_depth=4, early_w_clients=early)
    bursts = {j: [(0x1000 * (j + 1) + 0x40 * k, rng.randint(1, 4)) for k in range(8)]
              for j in range(3)}
    seen_aw, seen_w = [], []

    async def bench(ctx):
        axi = dut.axi
        pending_aw = {j: list(bursts[j]) for j in bursts}
        pending_w = {j: [(a, beat, n) for a, n in bursts[j] for beat in range(n)] for j in bursts}
        for cycle in range(1500):
            if not any(pending_w.values()) and not ctx.get(axi.wvalid):
                break
            ctx.set(axi.awready, rng.random() < 0.6)
            ctx.set(axi.wready, rng.random() < 0.6)
            offer_aw, offer_w = {}, {}
            for j in range(3):
                port = dut.write[j]
                offer_aw[j] = bool(pending_aw[j]) and rng.random() < 0.7
                ctx.set(port.aw.valid, offer_aw[j])
                if pending_aw[j]:
                    addr, n = pending_aw[j][0]
                    ctx.set(port.aw.p.addr, addr)
                    ctx.set(port.aw.p.len, n - 1)
                offer_w[j] = bool(pending_w[j]) and rng.random() < 0.8
                ctx.set(port.w.valid, offer_w[j])
                if pending_w[j]:
                    addr, beat, n = pending_w[j][0]
                    ctx.set(port.w.p.data, addr + beat)
                    ctx.set(port.w.p.last, beat == n - 1)
            taken_aw = {j: offer_aw[j] and ctx.get(dut.write[j].aw.ready) for j in range(3)}
            taken_w = {j: offer_w[j] and ctx.get(dut.write[j].w.ready) for j in range(3)}
            assert sum(taken_w.values()) <= 1
            if ctx.get(axi.awvalid) and ctx.get(axi.awready):
                seen_aw.append((ctx.get(axi.awid), ctx.get(axi.awaddr), ctx.get(axi.awlen) + 1))
            if ctx.get(axi.wvalid) and ctx.get(axi.wready):
                seen_w.append((ctx.get(axi.wdata), ctx.get(axi.wlast)))
            await ctx.tick()
            for j in range(3):
                if taken_aw[j]:
                    pending_aw[j].pop(0)
                if taken_w[j]:
                    pending_w[j].pop(0)
        else:
            raise AssertionError("W did not drain")

    _sim(dut, bench, cycles=1600)
    assert sorted(seen_aw) == sorted((j, a, n) for j in bursts for a, n in bursts[j])
    want = [(addr + beat, beat == n - 1) for _, addr, n in seen_aw for beat in range(n)]
    assert seen_w == want


@pytest.mark.parametrize("early", [(), (1,)])
def test_single_beat_bursts_every_cycle(early):
    """Back-to-back 1-beat bursts alternating between two clients keep AW and
    W busy every cycle once started (the 1.0 records/clock of 128-bit data)."""
    dut = AxiMaster(read_clients=1, write_clients=2, data_width=128, early_w_clients=early)
    count = 12
    w_cycles, aw_cycles = [], []

    async def bench(ctx):
        axi = dut.axi
        ctx.set(axi.awready, 1)
        ctx.set(axi.wready, 1)
        left_aw = {0: count, 1: count}
        left_w = {0: count, 1: count}
        for cycle in range(80):
            for j in (0, 1):
                port = dut.write[j]
                ctx.set(port.aw.valid, left_aw[j] > 0)
                ctx.set(port.aw.p.addr, 0x1000 * (j + 1) + 16 * left_aw[j])
                ctx.set(port.w.valid, left_w[j] > 0)
                ctx.set(port.w.p.last, 1)
            taken_aw = {j: left_aw[j] > 0 and ctx.get(dut.write[j].aw.ready) for j in (0, 1)}
            taken_w = {j: left_w[j] > 0 and ctx.get(dut.write[j].w.ready) for j in (0, 1)}
            if ctx.get(axi.awvalid):
                aw_cycles.append(cycle)
            if ctx.get(axi.wvalid):
                w_cycles.append(cycle)
            await ctx.tick()
            for j in (0, 1):
                left_aw[j] -= taken_aw[j]
                left_w[j] -= taken_w[j]

    _sim(dut, bench, cycles=90)
    assert aw_cycles == list(range(aw_cycles[0], aw_cycles[0] + 2 * count))
    assert w_cycles == list(range(w_cycles[0], w_cycles[0] + 2 * count))


async def _lone_burst(ctx, dut, client, beats, data, seen, check_cycle=None):
    """Drive one burst of ``beats`` beats (data ``data``, ``data + 1``, ...) on
    write client ``client`` and nothing else, with AWREADY and WREADY high, for
    20 cycles; ``seen`` collects the cycles AWVALID and WVALID are high and the
    W beats.  ``check_cycle(left_aw, left_w)``, if given, runs at the start of
    each cycle."""
    axi, port = dut.axi, dut.write[client]
    ctx.set(axi.awready, 1)
    ctx.set(axi.wready, 1)
    left_aw, left_w = 1, beats
    for cycle in range(20):
        if check_cycle is not None:
            check_cycle(left_aw, left_w)
        ctx.set(port.aw.valid, left_aw > 0)
        ctx.set(port.aw.p.addr, 0x1000 * (client + 1))
        ctx.set(port.aw.p.len, beats - 1)
        ctx.set(port.w.valid, left_w > 0)
        ctx.set(port.w.p.data, data + beats - left_w)
        ctx.set(port.w.p.last, left_w == 1)
        taken_aw = left_aw > 0 and ctx.get(port.aw.ready)
        taken_w = left_w > 0 and ctx.get(port.w.ready)
        if ctx.get(axi.awvalid):
            seen["aw"].append(cycle)
        if ctx.get(axi.wvalid):
            seen["w"].append(cycle)
            seen["beats"].append((ctx.get(axi.wdata), ctx.get(axi.wlast)))
        await ctx.tick()
        left_aw -= taken_aw
        left_w -= taken_w


def _check_lone_burst(seen, beats, data, w_after_aw):
    assert len(seen["aw"]) == 1 and seen["w"][0] == seen["aw"][0] + w_after_aw
    assert seen["w"] == list(range(seen["w"][0], seen["w"][0] + beats))
    assert seen["beats"] == [(data + k, k == beats - 1) for k in range(beats)]


@pytest.mark.parametrize("beats", [1, 2])
def test_idle_write_leaves_with_its_aw(beats):
    """With nothing in the W order, a client's first W beat reaches the port in
    the cycle its AW does (a single-beat store, e.g. a fence's AV store, is not
    a cycle later than its address), and the burst still goes out whole."""
    dut = AxiMaster(read_clients=1, write_clients=3, early_w_clients=(2,))
    seen = {"aw": [], "w": [], "beats": []}

    async def bench(ctx):
        await _lone_burst(ctx, dut, 2, beats, 0xA0, seen)
        # The W order is empty again: a later burst of another client goes first.
        assert not ctx.get(dut.write[0].w.ready)

    _sim(dut, bench, cycles=30)
    _check_lone_burst(seen, beats, 0xA0, w_after_aw=0)


@pytest.mark.parametrize("beats", [1, 2])
def test_w_ready_is_registered_for_other_clients(beats):
    """A client not named in ``early_w_clients`` sees a ``w.ready`` that no
    input of the same cycle but ``wready`` changes (high ``wready`` frees the
    W output register), and its lone burst's first beat reaches the port one
    cycle after its AW."""
    dut = AxiMaster(read_clients=1, write_clients=3, early_w_clients=(2,))
    seen = {"aw": [], "w": [], "beats": []}

    async def bench(ctx):
        axi, port = dut.axi, dut.write[1]

        def same_with_inputs_low_and_high(left_aw, left_w):
            # w.ready read with every same-cycle input but wready low, then
            # high: no change.
            readings = []
            for level in (0, 1):
                ctx.set(axi.awready, level)
                ctx.set(port.aw.valid, level and left_aw > 0)
                ctx.set(port.w.valid, level and left_w > 0)
                readings.append(ctx.get(port.w.ready))
            assert readings[0] == readings[1]

        await _lone_burst(ctx, dut, 1, beats, 0xB0, seen, same_with_inputs_low_and_high)

    _sim(dut, bench, cycles=30)
    _check_lone_burst(seen, beats, 0xB0, w_after_aw=1)


@pytest.mark.parametrize("depth", [3, 4, 8])
def test_aw_order_fills_to_its_depth(depth):
    """With no W offered, exactly ``w_order_depth`` AWs are granted; once W
    flows, the rest follow."""
    dut = AxiMaster(read_clients=1, write_clients=1, w_order_depth=depth)
    total = depth + 4
    grants = []

    async def bench(ctx):
        axi, port = dut.axi, dut.write[0]
        ctx.set(axi.awready, 1)
        ctx.set(axi.wready, 1)
        ctx.set(port.aw.p.len, 0)
        ctx.set(port.aw.p.size, 3)
        ctx.set(port.w.p.last, 1)
        left_aw, left_w = total, total
        for cycle in range(120):
            w_on = cycle >= 40
            ctx.set(port.aw.valid, left_aw > 0)
            ctx.set(port.w.valid, w_on and left_w > 0)
            took_aw = ctx.get(port.aw.ready) and left_aw > 0
            took_w = ctx.get(port.w.ready) and w_on and left_w > 0
            await ctx.tick()
            if took_aw:
                left_aw -= 1
                grants.append(cycle)
            if took_w:
                left_w -= 1
        assert left_aw == 0 and left_w == 0

    _sim(dut, bench, cycles=130)
    assert sum(1 for c in grants if c < 40) == depth
    assert len(grants) == total

"""ResponseArbiter on Amaranth's simulator: fairness, order, no buffering, stream rules."""

import random

from amaranth.hdl import Value
from amaranth.sim import Simulator

from prifence.formats import PrgResponse, codec
from rtl.response_arbiter import ResponseArbiter

RESP = codec(PrgResponse)


def payload(source, n):
    """A distinct response: ``prgi`` numbers it, ``did`` names the source."""
    return RESP.pack(did={"auto": 0xA, "cmd": 0xC}[source], prgi=n % 512, code=n % 2, pv=0)


def simulate(cycles, *, auto_rate, cmd_rate, ready_rate, seed):
    """Both sources offer numbered responses at random, the sink takes them at random.

    Returns the per-cycle record ``(auto_v, auto_r, cmd_v, cmd_r, o_v, o_r, o_payload)``."""
    dut = ResponseArbiter()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    trace = []

    async def bench(ctx):
        rng = random.Random(seed)
        nxt = {"auto": 0, "cmd": 0}
        offered = {"auto": False, "cmd": False}
        ports = {"auto": dut.auto, "cmd": dut.cmd}
        for _ in range(cycles):
            for name, port in ports.items():
                rate = auto_rate if name == "auto" else cmd_rate
                if not offered[name] and rng.random() < rate:
                    offered[name] = True
                    ctx.set(port.valid, 1)
                    ctx.set(Value.cast(port.payload), payload(name, nxt[name]))
            ctx.set(dut.o.ready, int(rng.random() < ready_rate))
            row = (ctx.get(dut.auto.valid), ctx.get(dut.auto.ready), ctx.get(dut.cmd.valid),
                   ctx.get(dut.cmd.ready), ctx.get(dut.o.valid), ctx.get(dut.o.ready),
                   ctx.get(Value.cast(dut.o.payload)))
            trace.append(row)
            await ctx.tick()
            for name, port in ports.items():
                if row[2 * (name == "cmd")] and row[2 * (name == "cmd") + 1]:
                    nxt[name] += 1
                    offered[name] = False
                    ctx.set(port.valid, 0)

    sim.add_testbench(bench)
    sim.run()
    return trace


def test_ready_never_feeds_valid():
    """o.valid and o.payload do not depend combinationally on o.ready."""
    dut = ResponseArbiter()
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        for auto_v, cmd_v in ((1, 0), (0, 1), (1, 1), (0, 0)):
            ctx.set(dut.auto.valid, auto_v)
            ctx.set(dut.cmd.valid, cmd_v)
            ctx.set(Value.cast(dut.auto.payload), payload("auto", 1))
            ctx.set(Value.cast(dut.cmd.payload), payload("cmd", 2))
            seen = set()
            for ready in (0, 1, 0):
                ctx.set(dut.o.ready, ready)
                seen.add((ctx.get(dut.o.valid), ctx.get(Value.cast(dut.o.payload))))
            assert len(seen) == 1, (auto_v, cmd_v, seen)
            assert next(iter(seen))[0] == (auto_v | cmd_v)
            ctx.set(dut.o.ready, 0)
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


def test_alternates_when_both_wait():
    trace = simulate(200, auto_rate=1.0, cmd_rate=1.0, ready_rate=1.0, seed=1)
    winners = ["auto" if r[1] else "cmd" for r in trace if r[4] and r[5]]
    assert len(winners) == 200
    assert all(a != b for a, b in zip(winners, winners[1:])), winners[:10]


def test_single_source_gets_every_slot():
    trace = simulate(100, auto_rate=0.0, cmd_rate=1.0, ready_rate=1.0, seed=2)
    assert sum(1 for r in trace if r[3]) == 100


def test_random_order_fairness_no_buffering(seed):
    trace = simulate(3000, auto_rate=0.6, cmd_rate=0.6, ready_rate=0.5, seed=seed)
    got = {"auto": [], "cmd": []}
    waiting_since = {}
    lost = {"auto": 0, "cmd": 0}
    prev = None
    for cycle, (av, ar, cv, cr, ov, orr, op) in enumerate(trace):
        # No buffering: a transfer on o is exactly one input's transfer, same cycle.
        assert (ov and orr) == ((av and ar) or (cv and cr)), cycle
        assert not ((av and ar) and (cv and cr)), cycle
        assert ov == (av or cv), cycle
        # Stream rule on o: a stalled payload is offered again unchanged.
        if prev is not None:
            assert ov and op == prev, f"cycle {cycle}: prg_resp changed while stalled"
        prev = op if (ov and not orr) else None
        if ov and orr:
            src = "auto" if (av and ar) else "cmd"
            got[src].append(RESP.unpack(op))
            other = "cmd" if src == "auto" else "auto"
            # Fairness: while both wait, neither loses two transfers in a row.
            if (cv if other == "cmd" else av):
                lost[other] += 1
                assert lost[other] <= 1, f"cycle {cycle}: {other} lost twice in a row"
            lost[src] = 0
    for src, did in (("auto", 0xA), ("cmd", 0xC)):
        assert got[src], src
        assert all(p["did"] == did for p in got[src])
        assert [p["prgi"] for p in got[src]] == [n % 512 for n in range(len(got[src]))], src


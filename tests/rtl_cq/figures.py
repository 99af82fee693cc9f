"""Measured figures of the command queue on Amaranth's simulator (issue 4's targets).

``cq_figures()`` returns a dict of measurements, each taken from a bench of
:mod:`cq_harness` against a memory that accepts every request at once and answers
in the next cycle (``read_latency=1``, ``write_latency=1``) unless its name says
otherwise:

``prgr_per_clock_{64,128}_lat{1,8}``
    Sustained ATS.PRGR responses per clock (120 commands, ``prg_resp`` always
    ready), memory data width 64 or 128 bits, read latency 1 or 8 cycles.  The
    memory-port bound of DESIGN §1 is 0.5 (64 bits) and 1.0 (128 bits).
``fence_after_response_{av0,av1}``
    Cycles from the acceptance of the last earlier response on ``prg_resp`` (held
    back for 300 cycles) to the first cycle cqh is past the fence.  Target <= 4.
``fence_store_after_response``
    Cycles from that acceptance to the AV store's AW acceptance.
``fence_after_fetch_{av0,av1}``
    A fence with no earlier work: cycles from the last R beat of its fetch to cqh
    past it.  Target <= 8.
``drain_fence_after_retire``
    IOFENCE.PD (AV=0): cycles from ``pr_retired`` reaching the snapshot to cqh past it.

Run ``python tests/rtl_cq/figures.py`` to print them as JSON.
"""

import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's ``rtl`` (not an installed one), then the harness beside this file.
sys.path[:0] = [_HERE, os.path.dirname(os.path.dirname(_HERE))]

from cq_harness import Policy, iofence, prgr, run   # noqa: E402

__all__ = ["cq_figures", "TARGETS"]

#: Issue 4's targets: (figure, comparison, bound).
TARGETS = {
    "prgr_per_clock_64_lat1": (">=", 0.5),
    "prgr_per_clock_64_lat8": (">=", 0.5),
    "fence_after_response_av0": ("<=", 4),
    "fence_after_response_av1": ("<=", 4),
    "fence_after_fetch_av0": ("<=", 8),
    "fence_after_fetch_av1": ("<=", 8),
}


def _numbered(n):
    return prgr(did=0x100 + n % 64, prgi=n % 512, code=0)


def prgr_rate(*, data_width, read_latency, n=120):
    async def bench(sw, env):
        await sw.enable()
        sw.post(*(_numbered(i) for i in range(n)))
        await sw.wait_idle(bound=20 * n)
    env = run(bench, data_width=data_width, policy=Policy(read_latency=read_latency),
              sw_args=dict(log2sz_1=7))
    assert len(env.transfers) == n
    return (n - 1) / (env.transfers[-1].cycle - env.transfers[0].cycle)


def fence_after_response(*, av, stall=300):
    """(cycles to cqh past the fence, cycles to the AV store) after the last earlier
    response is accepted."""
    async def bench(sw, env):
        env.sink_blocked = True
        await sw.enable()
        sw.post(_numbered(0), _numbered(1), iofence(av=av, wsi=1, data=1, addr=0x1000))
        await sw.tick(stall)
        env.sink_blocked = False
        await sw.wait_idle()
    env = run(bench)
    last = env.transfers[-1].cycle
    done = next(c for c, h in env.heads if h == 3)
    store = env.stores[0].cycle - last if av else None
    return done - last, store


def fence_after_fetch(*, av):
    async def bench(sw, env):
        await sw.enable()
        sw.post(iofence(av=av, wsi=1, data=1, addr=0x1000))
        await sw.wait_idle()
    env = run(bench)
    fetched = max(c for c, _, _ in env.read_beats)
    done = next(c for c, h in env.heads if h == 1)
    return done - fetched


def drain_fence_after_retire(*, retire_cycle=80):
    def hook(env, ctx):
        ctx.set(env.cq.pr_retired, 20 if env.cycle >= retire_cycle else 10)

    async def bench(sw, env):
        sw.set_pr(accepted=20, retired=10)
        env.every_cycle(hook)
        await sw.enable()
        sw.post(iofence(pd=True, wsi=1))
        await sw.wait_idle(bound=retire_cycle + 50)
    env = run(bench)
    done = next(c for c, h in env.heads if h == 1)
    assert done > retire_cycle
    return done - retire_cycle


def cq_figures():
    """Measure the command queue; returns ``{figure name: value}`` (see module doc)."""
    fig = {}
    for dw in (64, 128):
        for lat in (1, 8):
            fig[f"prgr_per_clock_{dw}_lat{lat}"] = round(prgr_rate(data_width=dw, read_latency=lat), 3)
    fig["fence_after_response_av0"], _ = fence_after_response(av=0)
    fig["fence_after_response_av1"], fig["fence_store_after_response"] = fence_after_response(av=1)
    fig["fence_after_fetch_av0"] = fence_after_fetch(av=0)
    fig["fence_after_fetch_av1"] = fence_after_fetch(av=1)
    fig["drain_fence_after_retire"] = drain_fence_after_retire()
    return fig


def meets_targets(fig):
    """Names of the figures that miss issue 4's targets (empty when all are met)."""
    missed = []
    for name, (op, bound) in TARGETS.items():
        value = fig[name]
        if not (value >= bound if op == ">=" else value <= bound):
            missed.append(name)
    return missed


if __name__ == "__main__":
    figures = cq_figures()
    print(json.dumps(figures, indent=2))
    missed = meets_targets(figures)
    if missed:
        print(f"missed targets: {', '.join(missed)}", file=sys.stderr)
        sys.exit(1)

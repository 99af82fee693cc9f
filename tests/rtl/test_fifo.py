"""The counted FIFO (rtl/fifo.py) on Amaranth's simulator, against a list."""

import gc
import random
import warnings

import pytest
from amaranth.sim import Simulator

from rtl.fifo import CountedFifo


def test_bad_parameters():
    for kwargs, match in (({"width": 0, "depth": 4}, "width"), ({"width": 8, "depth": 1}, "depth"),
                          ({"width": 8, "depth": "4"}, "depth")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # the half-built component is never elaborated
            with pytest.raises(TypeError, match=match):
                CountedFifo(**kwargs)
            gc.collect()


@pytest.mark.parametrize("depth", [2, 3, 8])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_order_timing_and_full_use(depth, seed):
    """A user that writes whenever it holds fewer than ``depth`` entries and
    takes the output at random: entries leave in order, each reaches the output
    register two cycles after it is written at the earliest, and the output is
    offered as soon as it may be (no entry waits in the storage while the
    output register is free)."""
    rng = random.Random(seed)
    dut = CountedFifo(width=16, depth=depth)
    written, taken = [], []
    log = f"depth={depth} seed={seed}"

    async def bench(ctx):
        held = []               # (value, cycle written), as the user counts them
        counter = 0
        ready_at = {}           # value -> first cycle it may be at the output
        for cycle in range(600):
            write = len(held) < depth and rng.random() < 0.7
            ctx.set(dut.w_en, write)
            ctx.set(dut.w_data, counter)
            rdy = ctx.get(dut.r_rdy)
            take = rdy and rng.random() < 0.6
            ctx.set(dut.r_en, take)
            if rdy:
                value = ctx.get(dut.r_data)
                assert held, f"{log}: output offered with nothing written (cycle {cycle})"
                assert value == held[0][0], f"{log}: out of order at cycle {cycle}"
                assert cycle >= ready_at[value], f"{log}: entry {value} early at cycle {cycle}"
            else:
                # Anything written two or more cycles ago must be on offer.
                assert not held or cycle < held[0][1] + 2, \
                    f"{log}: entry {held[0][0]} written at {held[0][1]} not offered at cycle {cycle}"
            await ctx.tick()
            if take:
                taken.append(held.pop(0)[0])
            if write:
                held.append((counter, cycle))
                ready_at[counter] = cycle + 2
                written.append(counter)
                counter = (counter + 1) & 0xFFFF

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert taken == written[:len(taken)], log
    assert len(taken) > 100, log

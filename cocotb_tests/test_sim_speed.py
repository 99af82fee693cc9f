"""The simulator-speed bench runs on both simulators and sees the same design behaviour."""

import pytest

from cocotb_tests.sim_speed import amaranth_stream, verilator_stream


@pytest.mark.xdist_group("rtl-dw64")
def test_stream_bench_runs_on_both_simulators():
    n = 40
    amaranth = amaranth_stream(n)
    verilator = verilator_stream(n)
    for fig in (amaranth, verilator):
        assert fig["requests"] == n
        # Every request became a published record; at the 64-bit memory-port
        # bound of 0.5 records per clock that takes at least 2n cycles.
        assert fig["cycles"] >= 2 * n
        assert fig["cycles_per_s"] > 0

"""pytest entry points of the page-request benches (cocotb on Verilator).

One pytest item per cocotb test of :mod:`cocotb_tests.pq_benches`, so ``-k``
selects benches by name; items of one RTL configuration share an xdist group
(and so one worker and one Verilator build).  ``--seed`` replays a run.
"""

import pytest

from cocotb_tests.sim import run_or_fail

MODULE = "cocotb_tests.pq_benches"

#: The benches, by name (each a @cocotb.test in pq_benches.py).
BENCHES = (
    "row_ddtp_off", "row_ddtp_bare", "row_did_too_wide", "row_dc_load_fault", "row_dc_invalid",
    "row_dc_misconfigured", "row_pri_disabled", "row_pq_off", "row_pq_overflow",
    "row_pq_store_fault", "row_queued", "fault_queue_overflow_and_store_fault",
    "wrap_around", "overflow_recovery", "store_fault_discards_later_records",
    "disable_with_writes_in_flight", "pasid_and_prpr_rules", "arrival_order_under_backpressure",
    "interrupts", "context_cache_and_ddtp_write", "register_garbage", "random_against_model",
    "command_queue_invalidation", "iofence_pd_waits_for_retirement",
)

#: Benches also run on the 128-bit memory port.
WIDE_BENCHES = ("row_queued", "wrap_around", "store_fault_discards_later_records",
                "arrival_order_under_backpressure", "random_against_model")


def _env(soak):
    # --soak: the randomized bench runs ten times as many phases.
    return {"PRIFENCE_SOAK": "1"} if soak else None


@pytest.mark.xdist_group("rtl-dw64")
@pytest.mark.parametrize("bench", BENCHES)
def test_page_requests(bench, seed, soak):
    run_or_fail(MODULE, bench, seed=seed, extra_env=_env(soak))


@pytest.mark.xdist_group("rtl-dw128")
@pytest.mark.parametrize("bench", WIDE_BENCHES)
def test_page_requests_dw128(bench, seed, soak):
    run_or_fail(MODULE, bench, seed=seed, params={"data_width": 128}, extra_env=_env(soak))


def test_bench_list_matches_module():
    """Every cocotb test of the module has a pytest item (and no stale name)."""
    import ast
    from pathlib import Path
    tree = ast.parse(Path(__file__).with_name("pq_benches.py").read_text())
    names = {node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)
             and any("cocotb.test" in ast.unparse(d) for d in node.decorator_list)}
    assert names == set(BENCHES)
    assert set(WIDE_BENCHES) <= names and set(SMALL_BENCHES) <= names


@pytest.mark.parametrize("data_width", [
    pytest.param(64, marks=pytest.mark.xdist_group("rtl-dw64")),
    pytest.param(128, marks=pytest.mark.xdist_group("rtl-dw128")),
])
def test_pq_throughput_reaches_memory_bound(data_width, seed):
    """Counted in clock cycles (not wall time): the ingress takes one request per
    clock while its FIFO has room, and the PQ path writes records at the
    memory-port bound (0.5/clock at 64 bits, 1.0 at 128) against a memory that
    takes every beat at once."""
    from cocotb_tests.bench import pq_throughput
    figures = pq_throughput(data_width, requests=256, seed=seed)
    print(figures)
    assert figures["ingest_first_fifo_per_clock"] == 1.0
    assert figures["pq_records_per_clock"] >= 0.95 * figures["bound_records_per_clock"], figures


#: Benches also run on the configuration that fits an iCE40 UP5K
#: (``prifence.synth.CONFIGS["small"]``: 32-bit addresses, 2 cached contexts,
#: 4 requests in flight): same behaviour, fewer resources.
SMALL_BENCHES = ("row_queued", "wrap_around", "overflow_recovery",
                 "store_fault_discards_later_records", "arrival_order_under_backpressure",
                 "context_cache_and_ddtp_write", "random_against_model")


@pytest.mark.xdist_group("rtl-small")
@pytest.mark.parametrize("bench", SMALL_BENCHES)
def test_page_requests_small_config(bench, seed, soak):
    from prifence.synth import CONFIGS
    run_or_fail(MODULE, bench, seed=seed, params=CONFIGS["small"], extra_env=_env(soak))

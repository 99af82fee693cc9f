"""pytest entry points of the command-queue benches (cocotb on Verilator).

One pytest item per cocotb test of :mod:`cocotb_tests.cq_benches`, so ``-k``
selects benches by name; items of one RTL configuration share an xdist group
(and so one worker and one Verilator build).  ``--seed`` replays a run;
``--soak`` runs the randomized bench over more phases.
"""

import pytest

from cocotb_tests.sim import run_or_fail

MODULE = "cocotb_tests.cq_benches"

#: The benches, by name (each a @cocotb.test in cq_benches.py).
BENCHES = (
    "prgr_fields", "iofence_c_store_and_interrupt", "inval_ddt_orders_context_change",
    "inval_ddt_drops_in_flight_context_read",
    "fence_waits_for_held_responses", "order_under_random_backpressure",
    "illegal_commands_stop_until_cleared", "fetch_fault_reported_when_reached",
    "fetch_fault_either_half", "av_store_fault_then_retry", "cqcsr_rules",
    "disable_abandons_waiting_fence", "iofence_pd_races_page_requests",
    "iofence_pd_snapshot_after_prior_response", "fences_and_held_auto_responses",
    "random_against_model", "measure_figures",
)

#: Benches also run on the 128-bit memory port.
WIDE_BENCHES = ("prgr_fields", "iofence_c_store_and_interrupt", "fence_waits_for_held_responses",
                "fetch_fault_either_half", "iofence_pd_races_page_requests",
                "random_against_model", "measure_figures")

#: Phases of the randomized bench: default run and --soak.
PHASES, SOAK_PHASES = 25, 300


def _env(bench, soak):
    if bench == "random_against_model":
        return {"PRIFENCE_CQ_PHASES": str(SOAK_PHASES if soak else PHASES)}
    return None


@pytest.mark.xdist_group("rtl-dw64")
@pytest.mark.parametrize("bench", BENCHES)
def test_command_queue(bench, seed, soak):
    run_or_fail(MODULE, bench, seed=seed, extra_env=_env(bench, soak))


@pytest.mark.xdist_group("rtl-dw128")
@pytest.mark.parametrize("bench", WIDE_BENCHES)
def test_command_queue_dw128(bench, seed, soak):
    run_or_fail(MODULE, bench, seed=seed, params={"data_width": 128}, extra_env=_env(bench, soak))


def test_bench_list_matches_module():
    """Every cocotb test of the module has a pytest item (and no stale name)."""
    import ast
    from pathlib import Path
    tree = ast.parse(Path(__file__).with_name("cq_benches.py").read_text())
    names = {node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)
             and any("cocotb.test" in ast.unparse(d) for d in node.decorator_list)}
    assert names == set(BENCHES)
    assert set(WIDE_BENCHES) <= names

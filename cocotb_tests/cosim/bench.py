"""Co-simulation speed: simulated cycles per second of a fixed scenario on the
RTL, beside the same scenario's wall time on the transaction-level engine.

:func:`cosim_speed` is what ``make bench`` reports.  The RTL figure is the
scenario's own time (the bench resets and clears memory outside it); the
simulator start-up and the Verilator build (cached) are reported apart.
"""

import time

from .run import run_rtl, run_tlm

__all__ = ["cosim_speed"]


def cosim_speed(scenario="steady", seed=1, *, policy="seed", repeats=3):
    """Run ``scenario`` with ``seed`` ``repeats`` times in one simulation on the
    RTL and on the transaction-level engine.  Returns a dict: ``rtl_cycles``,
    ``rtl_wall_s`` (per run), ``rtl_cycles_per_s``, ``rtl_monitor_cycles``
    (cycles in which the hardware monitors sampled anything, per run),
    ``rtl_process_s`` (whole simulator process, start-up included),
    ``tlm_cycles``, ``tlm_wall_s``, ``tlm_cycles_per_s``, and the scenario,
    policy and seed."""
    if not isinstance(repeats, int) or repeats < 1:
        raise TypeError(f"repeats must be a positive int, not {repeats!r}")
    started = time.perf_counter()
    rtl = run_rtl(scenario, policy, [seed] * repeats, trace="none")
    process_s = time.perf_counter() - started
    for r in rtl:
        if not r["ok"]:
            raise RuntimeError(f"{scenario} seed {seed} failed on the RTL: {r['violation'] or r['error']}")
    rtl_wall = min(r["wall_s"] for r in rtl)
    tlm = run_tlm(scenario, policy, [seed] * repeats, trace="none")
    tlm_wall = min(r["wall_s"] for r in tlm)
    return {
        "scenario": scenario, "policy": policy, "seed": seed,
        "rtl_cycles": rtl[0]["cycles"], "rtl_wall_s": rtl_wall,
        "rtl_cycles_per_s": round(rtl[0]["cycles"] / rtl_wall) if rtl_wall else None,
        "rtl_monitor_cycles": rtl[0].get("monitor_cycles"),
        "rtl_process_s": round(process_s, 2),
        "tlm_cycles": tlm[0]["cycles"], "tlm_wall_s": tlm_wall,
        "tlm_cycles_per_s": round(tlm[0]["cycles"] / tlm_wall) if tlm_wall else None,
    }


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(cosim_speed(*sys.argv[1:2]), indent=1))

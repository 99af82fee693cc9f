"""How many random scenario-seeds per second the transaction-level engine runs."""

import time

from .scenarios import SCENARIOS, run_scenario

__all__ = ["seeds_per_second"]


def seeds_per_second(duration_s=3.0, *, scenarios=None, policy="seed", first_seed=0):
    """Run scenario seeds round-robin over ``scenarios`` (default: all) for
    about ``duration_s`` seconds of wall time (at least one round).

    Returns a dict: ``seeds``, ``seconds``, ``seeds_per_second`` (wall
    clock, one process), ``cpu_seconds`` and ``seeds_per_cpu_second`` (the
    figure a loaded machine does not distort), ``cycles``
    (simulated), ``cycles_per_second``, ``requests`` (page requests issued),
    ``violations`` (failed seeds, with their replay commands in ``failed``),
    and ``per_scenario`` (seeds/s of each scenario alone)."""
    if not isinstance(duration_s, (int, float)) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive number, not {duration_s!r}")
    names = list(scenarios or SCENARIOS)
    for name in names:
        if name not in SCENARIOS:
            raise ValueError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}")
    per = {name: [0, 0.0] for name in names}
    seeds = cycles = requests = 0
    failed = []
    seed = first_seed
    started = time.perf_counter()
    cpu_started = time.process_time()
    while True:
        for name in names:
            t0 = time.perf_counter()
            result = run_scenario(name, policy, seed)
            per[name][0] += 1
            per[name][1] += time.perf_counter() - t0
            seeds += 1
            cycles += result.cycles
            requests += result.counts.get("requests", 0)
            if not result.ok:
                failed.append(result.replay)
        seed += 1
        elapsed = time.perf_counter() - started
        if elapsed >= duration_s:
            break
    cpu = time.process_time() - cpu_started
    return {
        "seeds": seeds,
        "seconds": round(elapsed, 3),
        "seeds_per_second": round(seeds / elapsed, 1),
        "cpu_seconds": round(cpu, 3),
        "seeds_per_cpu_second": round(seeds / cpu, 1) if cpu else None,
        "cycles": cycles,
        "cycles_per_second": round(cycles / elapsed),
        "requests": requests,
        "violations": len(failed),
        "failed": failed,
        "per_scenario": {name: round(n / t, 1) for name, (n, t) in per.items() if t},
    }

"""Driver + devices + transaction-level hardware + checker, over random seeds.

The seed policy must pass every scenario on every seed; the reviewed policy
and each deliberately broken variant must be caught, naming its invariant.
Failures print the replay command.  ``--soak`` runs ten times the seeds and
larger request budgets; ``--seed`` replays a base seed.
"""

import functools
import random
import subprocess
import sys

import pytest

from sw_model.bench import seeds_per_second
from sw_model.driver import POLICIES, Layout, ReviewedDriver, SeedDriver
from sw_model.engine import Violation
from sw_model.scenarios import SCENARIOS, run_scenario, tlm_engine
from sw_model.variants import DRIVER_VARIANTS, HARDWARE_VARIANTS, SELF_TESTS

#: Seeds per (scenario, chunk) test: 7 scenarios x 5 chunks x 60 = 2100 seeds.
CHUNKS, PER_CHUNK = 5, 60


def _fail_message(results):
    lines = [str(r) + "\n    replay: " + r.replay for r in results]
    return "\n".join(lines)


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_seed_policy_passes_random_seeds(scenario, chunk, seed, soak):
    per_chunk = PER_CHUNK * (10 if soak else 1)
    scale = 3.0 if soak else 1.0
    base = seed + chunk * per_chunk
    failed = []
    for s in range(base, base + per_chunk):
        r = run_scenario(scenario, "seed", s, scale=scale)
        if not r.ok:
            failed.append(r)
    assert not failed, _fail_message(failed)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_seed_policy_with_tiny_queues(scenario, seed):
    """2-entry PQ and FQ, 4-entry CQ: overflow everywhere, a full command ring
    in the middle of a batch, recovery with the ring full."""
    layout = Layout(cq_log2sz_1=1, pq_log2sz_1=0, fq_log2sz_1=0)
    failed = [r for r in (run_scenario(scenario, "seed", s, driver_kw={"layout": layout})
                          for s in range(seed, seed + 20)) if not r.ok]
    assert not failed, _fail_message(failed)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_seed_policy_with_random_engine_and_driver_knobs(scenario, seed):
    """Jitter, memory and register latency, ingress depth, context-cache size,
    workers and PQ batch drawn per seed."""
    failed = []
    for s in range(seed, seed + 10):
        k = random.Random(s)
        knobs = dict(jitter_max=k.choice([0, 4, 20, 60]), mem_latency=k.choice([(1, 1), (1, 8), (5, 40)]),
                     reg_latency=k.choice([1, 2, 10]), ingress_depth=k.choice([1, 2, 16]),
                     dc_entries=k.choice([1, 8]))
        driver_kw = dict(workers=k.choice([1, 2, 4]), pq_batch=k.choice([1, 8]))
        r = run_scenario(scenario, "seed", s, driver_kw=driver_kw,
                         engine_factory=functools.partial(tlm_engine, **knobs))
        if not r.ok:
            failed.append(r)
            print("knobs:", knobs, driver_kw)
    assert not failed, _fail_message(failed)


def test_runs_are_reproducible_from_their_seed():
    for scenario in SCENARIOS:
        a = run_scenario(scenario, "seed", 4242)
        b = run_scenario(scenario, "seed", 4242)
        assert (a.ok, a.cycles, a.counts) == (b.ok, b.cycles, b.counts), scenario
    assert run_scenario("steady", "seed", 1).cycles != run_scenario("steady", "seed", 2).cycles


def test_scenarios_exercise_what_they_claim():
    """Each scenario reaches the situation it is named after (over a few seeds)."""
    def total(name, key, seeds=range(10)):
        return sum(run_scenario(name, "seed", s).counts.get(key, 0) for s in seeds)
    assert total("steady", "failure") > 0                  # RF, then PRI off/Reset/on
    assert total("pri_off", "pri_off_with_pending") > 0    # PRI off with groups pending
    assert total("pri_off", "pri_off_with_inflight") > 0   # ... and requests in flight
    assert total("pri_off", "abandoned") > 0               # unfinished groups abandoned
    assert total("pasid_teardown", "teardown_with_pending") > 0
    assert total("atomic_replace", "replace_with_pending") > 0
    assert total("pasid_teardown", "stop_markers") > 0
    assert total("overflow_storm", "drv_pq_errors") > 0    # pqof / pqmf recovered
    assert total("overflow_storm", "hw_auto_responses") > 0
    assert total("cmd_errors", "drv_cq_recoveries") > 0
    assert total("atomic_replace", "success") > 0
    r = run_scenario("several_devices", "seed", 0)
    assert r.ok and r.counts["requests"] > 100
    assert r.counts["drv_no_domain"] > 0                   # blocking domain: Invalid at once


def test_a_scenario_can_be_awaited_on_an_engine():
    """The form a cocotb bench uses: the scenario awaited on an engine it built."""
    from sw_model.checker import Checker
    from sw_model.scenarios import run_scenario_async
    from sw_model.tlm import TlmEngine
    checker = Checker()
    engine = TlmEngine(seed=8, observer=checker)
    checker.bind(engine, peek=engine.mem.read)
    driver, ctx = engine.run(run_scenario_async(engine, checker, "atomic_replace", "seed"))
    assert ctx.devices and all(d.stopped for d in ctx.devices)
    assert driver.counts["groups"] > 0 and not driver.params


def test_reviewed_policy_is_caught_breaking_invariant_1():
    results = [run_scenario("pri_off", "reviewed", s) for s in range(40)]
    caught = [r for r in results if not r.ok]
    assert len(caught) >= len(results) // 2
    assert {r.violation.invariant for r in caught} == {1}
    # and it is the same flow as the seed except for the steps it overrides
    assert POLICIES == {"seed": SeedDriver, "reviewed": ReviewedDriver}


@pytest.mark.parametrize("test", SELF_TESTS,
                         ids=[f"inv{t.invariant}-{t.policy}-{t.hardware}-{t.scenario}" for t in SELF_TESTS])
def test_checker_catches_each_broken_variant(test):
    """Seeds 0.. until the variant trips its invariant; every violation on the
    way must be one the variant can cause (the checker names causes precisely)."""
    factory = functools.partial(tlm_engine, hardware_cls=HARDWARE_VARIANTS[test.hardware])
    seen = []
    for s in range(test.seeds):
        r = run_scenario(test.scenario, DRIVER_VARIANTS[test.policy], s, engine_factory=factory,
                         options=test.options)
        if r.ok:
            continue
        seen.append(r)
        assert r.violation.invariant in test.may_trip, _fail_message([r])
        if r.violation.invariant == test.invariant:
            v = r.violation
            assert v.seed == s and v.cycle == r.cycles and v.objects
            assert f"invariant {test.invariant}" in str(v) and f"seed {s}" in str(v)
            return
    pytest.fail(f"{test} never tripped invariant {test.invariant} in {test.seeds} seeds; "
                f"saw {[r.violation.invariant for r in seen]}")


def test_every_invariant_has_a_broken_variant():
    assert {t.invariant for t in SELF_TESTS} == set(range(1, 8))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="no scenario"):
        run_scenario("nope")
    with pytest.raises(ValueError, match="no policy"):
        run_scenario("steady", "nope")
    with pytest.raises(TypeError, match="seed"):
        run_scenario("steady", "seed", "1")
    with pytest.raises(ValueError, match="duration_s"):
        seeds_per_second(0)


def test_violation_is_an_exception_with_the_facts():
    v = Violation(4, "x reached y", seed=9, cycle=123, objects=("a", 1))
    assert str(v) == "invariant 4 violated at cycle 123 (seed 9): x reached y ['a'; 1]"


def test_command_line_replays_a_failing_seed():
    ok = subprocess.run([sys.executable, "-m", "sw_model.run", "--scenario", "steady", "--seed", "3"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "steady/seed seed=3: ok" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "sw_model.run", "--scenario", "atomic_replace",
                          "--policy", "eager_free", "--seed", "0"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "invariant 5" in bad.stdout
    assert "replay: python -m sw_model.run --scenario atomic_replace --policy eager_free --seed 0" in bad.stdout


def test_benchmark_reports_seeds_per_second():
    figures = seeds_per_second(0.3, scenarios=["steady", "overflow_storm"])
    print("seeds/s:", figures["seeds_per_second"], figures["per_scenario"])
    assert figures["violations"] == 0 and figures["seeds"] >= 2
    assert figures["seeds_per_second"] > 0 and figures["cycles_per_second"] > 0
    assert set(figures["per_scenario"]) == {"steady", "overflow_storm"}

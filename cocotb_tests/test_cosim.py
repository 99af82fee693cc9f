"""Co-simulation regressions: every shipped scenario runs on the Verilated RTL
with the driver, device and checker models of :mod:`sw_model` unchanged.

Default run: a few seeds per scenario (derived from ``--seed``, printed);
``--soak`` runs many more.  One Verilator simulation per test runs all of its
seeds (the bench resets the DUT and clears memory between them).
"""

import pytest

from cocotb_tests.cosim.run import run_rtl
from sw_model.driver import Layout
from sw_model.scenarios import SCENARIOS

DEFAULT_SEEDS = 3
SOAK_SEEDS = 40


def _seeds(seed, soak):
    count = SOAK_SEEDS if soak else DEFAULT_SEEDS
    return [seed + k for k in range(count)]


def _explain(records):
    return "\n".join(
        f"seed {r['seed']}: " + (r["error"] or f"invariant {r['violation']['invariant']} at cycle "
                                 f"{r['violation']['cycle']}: {r['violation']['message']}")
        for r in records if not r["ok"])


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_seed_policy_holds_on_rtl(scenario, seed, soak, tmp_path):
    """The seed policy keeps every invariant against the RTL."""
    records = run_rtl(scenario, "seed", _seeds(seed, soak), workdir=tmp_path)
    assert [r["seed"] for r in records] == _seeds(seed, soak)
    failed = [r for r in records if not r["ok"]]
    assert not failed, f"{scenario}: replay with --seed {failed[0]['seed']}\n{_explain(failed)}"
    for r in records:
        assert r["counts"]["requests"] > 0 and r["cycles"] > 0
        # The run exercised the hardware: every request the devices sent was
        # retired one way or another and every group got its answer.
        assert r["counts"]["drv_fences"] > 0


def test_reviewed_policy_caught_on_rtl(seed, tmp_path):
    """The reviewed policy (discard pending faults without responding) loses
    groups: invariant 1 on the RTL, as on the transaction-level model."""
    seeds = [seed + k for k in range(3)]
    records = run_rtl("pri_off", "reviewed", seeds, workdir=tmp_path)
    caught = [r for r in records if not r["ok"]]
    assert caught, f"the reviewed policy passed seeds {seeds} of pri_off on the RTL"
    for r in caught:
        assert r["error"] is None, r["error"]
        assert r["violation"]["invariant"] == 1, r["violation"]
        assert r["violation"]["seed"] == r["seed"]
        assert "trace" in r          # the counter-example's trace was kept


def test_same_seed_same_run(seed, tmp_path):
    """A seed replays identically, whether it runs first or after other seeds,
    and after a run that broke an invariant (the reviewed policy usually does)."""
    keys = ("ok", "cycles", "counts", "violation")
    first = run_rtl("several_devices", "seed", [seed, seed + 1, seed], workdir=tmp_path / "a")
    alone = run_rtl("several_devices", "seed", [seed], workdir=tmp_path / "b")
    assert {k: first[0][k] for k in keys} == {k: first[2][k] for k in keys}
    assert {k: first[0][k] for k in keys} == {k: alone[0][k] for k in keys}
    broken = run_rtl("pri_off", "reviewed", [seed, seed], workdir=tmp_path / "c")
    assert {k: broken[0][k] for k in keys} == {k: broken[1][k] for k in keys}


def test_checker_sees_the_rtl_memory(seed, tmp_path):
    """The monitors are live: a memory that acknowledges PQ record writes
    without storing them is caught (invariant 6: pqt published a record the
    memory does not hold), at the first record."""
    pq = Layout().pq
    records = run_rtl("steady", "seed", [seed], workdir=tmp_path, lost_writes=[(pq, pq + 0x1000)])
    v = records[0]["violation"]
    assert v is not None and v["invariant"] == 6, records[0]
    assert "before memory held it" in v["message"]


@pytest.mark.xdist_group("rtl-dw128")
def test_seed_policy_holds_on_rtl_dw128(seed, tmp_path):
    """The 128-bit memory port: same models, same monitors, same invariants."""
    records = run_rtl("several_devices", "seed", [seed, seed + 1], workdir=tmp_path,
                      params={"data_width": 128})
    failed = [r for r in records if not r["ok"]]
    assert not failed, _explain(failed)

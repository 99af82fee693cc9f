"""Formal proofs of rtl/formal, run through the same runner as `make formal`.

The quick subset (``Proof.fast``) runs by default: each proof passes with every
cover reached, and its broken variant fails with a counterexample trace.  The
rest runs with ``--soak`` (or all together with ``make formal``)."""

from pathlib import Path

import pytest

from prifence.formal import Result, format_table, run_proof
from rtl.formal import PROOFS
from rtl.formal.command_queue_properties import CommandQueueProperties
from rtl.formal.page_request_queue_properties import PageRequestQueueProperties

BY_NAME = {p.name: p for p in PROOFS}


def _needs(proof, request):
    if not proof.fast and not request.config.getoption("--soak"):
        pytest.skip("slow proof: run with --soak or `make formal`")


@pytest.mark.parametrize("name", list(BY_NAME))
def test_proof_holds(name, request, tmp_path):
    proof = BY_NAME[name]
    _needs(proof, request)
    result = run_proof(proof, workroot=tmp_path)
    print(format_table([result]))
    assert result.status == "PASS", format_table([result])
    assert result.covers_total > 0
    assert result.covers_reached == result.covers_total, "an antecedent is unreachable"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_broken_variant_is_caught(name, request, tmp_path):
    proof = BY_NAME[name]
    _needs(proof, request)
    result = run_proof(proof, defect=True, workroot=tmp_path)
    print(format_table([result]))
    assert result.status == "FAIL", format_table([result])
    assert result.trace is not None and Path(result.trace).exists()
    assert result.failed, "the failing assertion is named"
    assert all("rtl/formal/" in f for f in result.failed)


def test_every_proof_has_a_defect_and_a_reason():
    assert len(BY_NAME) == len(PROOFS)
    for p in PROOFS:
        assert p.method in ("prove", "bmc") and p.depth > 0
        assert p.statement and p.why and p.defect
    assert any(p.fast for p in PROOFS)


def test_table_names_a_counterexample():
    failing = Result(name="pq_order", method="BMC", depth=16, status="FAIL", seconds=1.0,
                     failed=("rtl/formal/x.py:1  check(m, a)",), trace="/tmp/t/trace.vcd",
                     workdir="/tmp/t")
    passing = Result(name="inval_lookup", method="k-induction", depth=12, status="PASS",
                     seconds=2.5, covers_reached=2, covers_total=2)
    table = format_table([passing, failing])
    assert table.splitlines()[0].split() == ["property", "method", "depth", "result", "covers", "time"]
    assert "counterexample trace /tmp/t/trace.vcd" in table
    assert "failed assertion rtl/formal/x.py:1" in table
    assert passing.ok and not failing.ok


def test_bad_check_names_are_refused():
    with pytest.raises(TypeError, match="check must be one of"):
        PageRequestQueueProperties(check="pq_everything")
    with pytest.raises(TypeError, match="check must be one of"):
        CommandQueueProperties(check=None)

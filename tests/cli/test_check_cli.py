"""The command line: ``prifence check`` / ``diff`` / ``regress`` / ``demo``.

Bad input is exit status 2 with a one-line message and no simulation; the
transaction-level engine gives quick end-to-end checks; a few runs go through
the Verilated RTL (a user's policy file and scenario file included)."""

import json
import textwrap
import xml.etree.ElementTree as ET

import pytest

from prifence.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- bad usage: exit 2, one line, before any simulation ------------------------------

@pytest.mark.parametrize("argv, message", [
    (("--policy", "nonesuch"), "no policy 'nonesuch'"),
    (("--scenario", "nonesuch"), "no scenario 'nonesuch'"),
    (("--policy", "missing_file.py:X"), "does not exist"),
    (("--scenario", "missing_file.py"), "does not exist"),
    (("--seeds", "0"), "--seeds must be positive"),
    (("--scale", "0"), "--scale must be positive"),
])
def test_bad_usage(capsys, tmp_path, argv, message):
    status, out, err = run(capsys, "check", "--report", str(tmp_path), *argv)
    assert status == 2
    assert message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())           # nothing ran


@pytest.mark.parametrize("argv, message", [
    (("--max-in-flight", "3"), "must be a power of 2"),
    (("--addr-width", "20"), "must be in 32..64"),
    (("--prefetch-depth", "0"), "must be positive"),
])
def test_bad_hardware_parameters(capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(["verilog", "-o", str(tmp_path / "top.v"), *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_verilog_of_another_configuration(capsys, tmp_path):
    """The hardware parameters reach the generated top level (a 32-bit address
    narrows the AXI address ports)."""
    out = tmp_path / "top.v"
    status, _, err = run(capsys, "verilog", "-o", str(out), "--addr-width", "32",
                         "--max-in-flight", "4", "--dc-cache-entries", "2")
    assert status == 0, err
    text = out.read_text()
    assert "output [31:0] m_axi_awaddr" in text and "output [31:0] m_axi_araddr" in text


def test_broken_policy_files(capsys, tmp_path):
    broken = write(tmp_path, "broken.py", "import sw_model.driver\ndef broken(:\n")
    plain = write(tmp_path, "plain.py", "class NotADriver:\n    pass\n")
    failing = write(tmp_path, "failing.py", "import sw_model.driver\n\nraise RuntimeError('no')\n")
    for spec, message in ((f"{broken}:X", "does not import (line 2): SyntaxError"),
                          (f"{failing}:X", "does not import (line 3): RuntimeError: no"),
                          (f"{plain}:Missing", "has no class 'Missing'"),
                          (f"{plain}:NotADriver", "is not a driver class")):
        status, _, err = run(capsys, "check", "--engine", "tlm", "--policy", spec)
        assert status == 2, err
        assert message in err, err


def test_scenario_file_must_define_async_function(capsys, tmp_path):
    sync = write(tmp_path, "sync.py", "def scenario(ctx):\n    return None\n")
    status, _, err = run(capsys, "check", "--engine", "tlm", "--scenario", str(sync))
    assert status == 2 and "is not an async function" in err


# --- the transaction-level engine --------------------------------------------------------

def test_check_tlm_seed_policy_passes(capsys, tmp_path):
    status, out, err = run(capsys, "check", "--engine", "tlm", "--scenario", "pri_off",
                           "--seeds", "4", "--report", str(tmp_path))
    assert status == 0, out + err
    assert "4 seed(s)" in out and "no invariant broken" in out
    assert "seed 4/4" in err and "violations so far: 0" in err


def test_check_tlm_reviewed_policy_caught(capsys, tmp_path):
    status, out, _ = run(capsys, "check", "--engine", "tlm", "--scenario", "pri_off",
                         "--policy", "reviewed", "--seeds", "6", "--report", str(tmp_path))
    assert status == 1
    assert "invariant 1 broken" in out and "(tlm engine)" in out
    assert "driver steps" in out and "hardware and device events" in out
    folder = next(tmp_path.glob("pri_off-reviewed-seed*"))
    seed = folder.name.rpartition("seed")[2]
    assert f"seed {seed}, cycle" in out
    assert (folder / "timeline.png").stat().st_size > 10_000
    assert f"prifence check --scenario pri_off --policy reviewed --seed {seed} --engine tlm" in \
        (folder / "report.txt").read_text()


# --- the RTL -------------------------------------------------------------------------

SKIPS_DRAIN = """
    from sw_model.driver import SeedDriver

    class NoDrain(SeedDriver):
        '''Turns PRI off without the page-request drain fence.'''
        async def drain_page_requests(self):
            return
"""

SAME_AS_SEED = """
    from sw_model.driver import SeedDriver

    class Careful(SeedDriver):
        '''The seed's flow, with one more IOFENCE.C after each PRI-off.'''
        async def pri_off(self, did):
            await super().pri_off(did)
            await self.fence_responses()
"""


def test_check_rtl_user_policies(capsys, tmp_path):
    good = write(tmp_path, "careful.py", SAME_AS_SEED)
    status, out, err = run(capsys, "check", "--policy", f"{good}:Careful", "--scenario", "pri_off",
                           "--seeds", "2", "--seed", "3", "--report", str(tmp_path / "a"))
    assert status == 0, out + err
    bad = write(tmp_path, "nodrain.py", SKIPS_DRAIN)
    status, out, err = run(capsys, "check", "--policy", f"{bad}:NoDrain", "--scenario", "pri_off",
                           "--seeds", "4", "--report", str(tmp_path / "b"))
    assert status == 1, out + err
    assert "(rtl engine)" in out and "invariant" in out
    assert "replay of the seed alone with waves: identical run" in out
    folder = next((tmp_path / "b").glob("pri_off-NoDrain-seed*"))
    assert list(folder.glob("waves.*")), "no waveform written"
    assert (folder / "timeline.png").exists()
    trace = json.loads((folder / "trace.json").read_text())
    assert any(kind == "violation" for _, kind, _ in trace)


def test_check_rtl_scenario_file(capsys, tmp_path):
    scenario = write(tmp_path, "two_cycles.py", """
        async def scenario(ctx):
            '''One device; PRI off and on twice while it faults.'''
            dev = await ctx.add_device(9, pasids=(1,), max_groups=12)
            for _ in range(2):
                await ctx.engine.delay(60)
                await ctx.pri_cycle(dev)
            await ctx.finish()
    """)
    status, out, err = run(capsys, "check", "--scenario", str(scenario), "--seeds", "2",
                           "--report", str(tmp_path / "r"))
    assert status == 0, out + err


def test_diff_steady(capsys, tmp_path):
    status, out, err = run(capsys, "diff", "--scenario", "steady", "--seed", "2",
                           "--report", str(tmp_path))
    assert status == 0, out + err
    assert "no divergence" in out
    assert "PQ records" in out and "ATS.PRGR responses" in out


def test_regress_selects_and_writes_junit(capsys, tmp_path):
    junit = tmp_path / "regress.xml"
    status, out, _ = run(capsys, "regress", "-k", "test_bench_list_matches_module",
                         "--junit", str(junit))
    assert status == 0, out
    cases = ET.parse(junit).getroot().iter("testcase")
    names = {case.get("name") for case in cases}
    assert names == {"test_bench_list_matches_module"}
    status, _, err = run(capsys, "regress", "--shard", "3/2")
    assert status == 2 and "1 <= K <= N" in err

"""The register-to-register depth estimate (``prifence synth --paths``).

Hand-made netlists with a known structure check the walk (levels, carry
chains, distributed-RAM reads, loops, block names); one run on the register
file checks the command line end to end.
"""

import json

import pytest

from prifence import logic_depth
from prifence.cli import main


def _cell(ctype, **ports):
    directions = {p: ("output" if p in ("Q", "Z", "O", "COUT", "S0", "DO") else "input") for p in ports}
    return {"type": ctype, "port_directions": directions,
            "connections": {p: (v if isinstance(v, list) else [v]) for p, v in ports.items()}}


def _netlist(cells, names):
    return {"modules": {"top": {"cells": cells, "netnames": {
        n: {"bits": [b], "hide_name": 0} for n, b in names.items()}}}}


def chain(levels, *, prefix="core.core.blk.sub", base=10):
    """FF -> ``levels`` LUT4s -> FF, and a second FF fed straight from the
    first; net bits from ``base`` on."""
    cells = {f"{prefix}.src": _cell("TRELLIS_FF", CLK=1, DI=2, Q=base)}
    net = base
    for k in range(levels):
        cells[f"{prefix}.lut{k}"] = _cell("LUT4", A=net, B="0", C="0", D="0", Z=net + 1)
        net += 1
    cells[f"{prefix}.dst"] = _cell("TRELLIS_FF", CLK=1, DI=net, Q=net + 1)
    cells[f"{prefix}.near"] = _cell("TRELLIS_FF", CLK=1, DI=base, Q=net + 2)
    names = {f"{prefix}.n{b}": b for b in range(base + 1, net + 1)}
    names[f"{prefix}.src_q"] = base
    return _netlist(cells, names)


@pytest.mark.parametrize("levels", [1, 4, 9])
def test_levels_and_order(levels):
    found = logic_depth.endpoints(chain(levels))
    worst = found[0]
    assert worst.cell.endswith(".dst") and worst.port == "DI"
    assert worst.levels == levels
    assert worst.path[0] == ("core.core.blk.sub.src_q", "TRELLIS_FF")
    assert len(worst.path) == levels + 1
    m = logic_depth.DelayModel()
    # The source net also feeds ``near``: two sinks, one doubling of fanout.
    assert worst.arrival == pytest.approx(
        m.clk_to_q + m.fanout + levels * (m.route + m.lut) + m.route)
    near = next(e for e in found if e.cell.endswith(".near"))
    assert near.levels == 0 and near.arrival < worst.arrival
    assert worst.block == "blk.sub"


def test_fanout_lengthens_a_net():
    """The same single LUT level, once into one flip-flop and once into 64
    enables: the wide net arrives later, by the model's cost per doubling."""
    def one_level(enables):
        cells = {"core.f.src": _cell("TRELLIS_FF", CLK=1, DI=2, Q=10),
                 "core.f.lut": _cell("LUT4", A=10, B="0", C="0", D="0", Z=11)}
        for k in range(enables):
            cells[f"core.f.dst{k}"] = _cell("TRELLIS_FF", CLK=1, DI="0", CE=11, Q=100 + k)
        return max(e.arrival for e in logic_depth.endpoints(_netlist(cells, {})))
    m = logic_depth.DelayModel()
    assert one_level(64) - one_level(1) == pytest.approx(6 * m.fanout)


def test_carry_chain_costs_less_than_luts():
    # FF -> CCU2C -> CCU2C (carry) -> FF against FF -> LUT -> LUT -> FF.
    cells = {
        "core.a.src": _cell("TRELLIS_FF", CLK=1, DI=2, Q=10),
        "core.a.c0": _cell("CCU2C", A0=10, B0=3, CIN=4, COUT=11, S0=12),
        "core.a.c1": _cell("CCU2C", A0=3, B0=3, CIN=11, COUT=13, S0=14),
        "core.a.dst": _cell("TRELLIS_FF", CLK=1, DI=14, Q=15),
    }
    carry = logic_depth.endpoints(_netlist(cells, {}))[0]
    luts = logic_depth.endpoints(chain(2))[0]
    assert carry.levels == 0 and carry.arrival < luts.arrival


def test_distributed_ram_read_is_combinational_and_loops_end():
    cells = {
        "core.x.ptr": _cell("TRELLIS_FF", CLK=1, DI=2, Q=10),
        "core.x.ram": _cell("TRELLIS_DPR16X4", RAD=[10], DI=[3], WAD=[3], WRE=3, WCK=1, DO=[11]),
        "core.x.l0": _cell("LUT4", A=11, B=13, C=3, D=3, Z=12),
        "core.x.l1": _cell("LUT4", A=12, B=3, C=3, D=3, Z=13),      # loop l0 <-> l1
        "core.x.dst": _cell("TRELLIS_FF", CLK=1, DI=13, Q=14),
    }
    found = logic_depth.endpoints(_netlist(cells, {}))
    dst = next(e for e in found if e.cell == "core.x.dst")
    assert dst.path[0][1] == "TRELLIS_FF" and dst.levels == 2
    assert any(ctype == "TRELLIS_DPR16X4" for _, ctype in dst.path)


def test_summary_and_block_filter(tmp_path, capsys):
    path = tmp_path / "top.json"
    net = chain(6)
    other = chain(2, prefix="core.core.other", base=100)["modules"]["top"]
    net["modules"]["top"]["cells"].update(other["cells"])
    net["modules"]["top"]["netnames"].update(other["netnames"])
    path.write_text(json.dumps(net))
    assert logic_depth.main([str(path), "--summary"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "blk.sub" in out[0] and " 6 LUT levels" in out[0]
    assert logic_depth.main([str(path), "--block", "other", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "core.core.other.dst.DI" in out and "blk.sub" not in out


def test_cli_paths_on_the_register_file(capsys):
    """``synth --paths`` runs yosys only and lists paths of the real netlist."""
    assert main(["synth", "--target", "ice40", "--core", "registers", "--paths", "3"]) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if "LUT levels  ->" in line]
    assert len(heads) == 3
    arrivals = [float(line.split()[0]) for line in heads]
    assert arrivals == sorted(arrivals, reverse=True) and arrivals[0] > 1.0
    assert "core.core." in out or "core." in out

"""Register-to-register path depth of a synthesised netlist (no place and route).

Reads the yosys JSON netlist that :mod:`prifence.synth` writes (``top.json``,
ECP5 or iCE40 cells) and estimates, for every flip-flop and block-RAM input,
the arrival time of its deepest combinational path with a simple delay model:
a routing hop per net that grows with the net's fanout, plus a per-cell
logic delay.  It ranks every
endpoint of the design in seconds, where a place-and-route run names only
the single worst path after minutes, so every deep path can be seen (and
fixed) at once.

The model is a ranking, not a timing sign-off: it knows nothing of placement.
Calibrated against nextpnr on ECP5, a path of ``n`` LUT levels lands near
``0.5 + n * 1.0 + 0.6`` ns of routed delay at the fill levels seen here.

    python -m prifence.logic_depth build/synth/ecp5-top/top.json --top 20
"""

import argparse
import collections
import json
import math
import re
import sys
from dataclasses import dataclass

__all__ = ["DelayModel", "Endpoint", "endpoints", "main"]


@dataclass(frozen=True)
class DelayModel:
    """Delays in ns: ``route`` per net hop plus ``fanout`` per doubling of the
    net's sinks (a net that reaches a hundred enables is long), the rest per
    cell arc."""
    route: float = 0.6
    fanout: float = 0.25
    clk_to_q: float = 0.5
    lut: float = 0.4
    mux: float = 0.2          # PFUMX / L6MUX21 (the hop to them is local)
    carry_in: float = 0.45    # CCU2C / SB_CARRY data input to carry or sum
    carry_chain: float = 0.05  # carry in to carry out (no routing hop)
    carry_sum: float = 0.25   # carry in to sum
    dram_read: float = 0.5    # distributed RAM read address to data
    bram_clk_to_q: float = 1.5


_LUTS = ("LUT4", "SB_LUT4")
_MUXES = ("PFUMX", "L6MUX21")
_CARRIES = ("CCU2C", "SB_CARRY")
_COMB = set(_LUTS + _MUXES + _CARRIES + ("TRELLIS_DPR16X4",))
_CLOCKS = {"CLK", "CLKA", "CLKB", "WCK", "CLKR", "CLKW", "RCLK", "WCLK", "C"}
_GENERATED = re.compile(r"_(LUT4|SB_LUT4|CCU2C|PFUMX|L6MUX21|TRELLIS_\w+|SB_\w+|DP16KD)_")


@dataclass
class Endpoint:
    arrival: float
    cell: str
    port: str
    path: list          # [(net name, cell type)] from the start point
    levels: int

    @property
    def block(self):
        return _block(self.cell)


def _block(name):
    parts = name.split(".")
    if parts[0] != "core":
        return "(wrapper)"
    parts = [p for p in parts[:-1] if p != "core"]
    return ".".join(parts[:2]) if parts else "(core)"


def _arc(model, ctype, inp, out):
    """Delay of the cell's arc from input port ``inp`` to output ``out``, and
    whether the net into it costs a routing hop; None when there is no arc."""
    if ctype in _LUTS:
        return model.lut, True
    if ctype in _MUXES:
        return model.mux, inp in ("SD", "C0")
    if ctype == "CCU2C":
        if inp == "CIN":
            return (model.carry_chain if out == "COUT" else model.carry_sum), False
        return model.carry_in, True
    if ctype == "SB_CARRY":
        if inp == "CI":
            return model.carry_chain, False
        return model.carry_in, True
    if ctype == "TRELLIS_DPR16X4":
        if inp.startswith("RAD") and out.startswith("DO"):
            return model.dram_read, True
        return None
    return None


def _net_names(module):
    """A readable name per net bit: a name from the design, not one yosys made up."""
    names = {}
    for name, net in module["netnames"].items():
        score = (net.get("hide_name", 0), bool(_GENERATED.search(name)), name.count("$"), len(name))
        for i, bit in enumerate(net["bits"]):
            if not isinstance(bit, int):
                continue
            label = name if len(net["bits"]) == 1 else f"{name}[{i}]"
            if bit not in names or score < names[bit][0]:
                names[bit] = (score, label)
    return {bit: label for bit, (score, label) in names.items()}


def endpoints(netlist, model=DelayModel()):
    """Every register/RAM input of the top module with its deepest path, worst first."""
    module = netlist["modules"]["top"]
    cells = module["cells"]
    names = _net_names(module)
    drivers = {}
    sinks = collections.Counter()
    for cname, cell in cells.items():
        for port, bits in cell["connections"].items():
            output = cell.get("port_directions", {}).get(port) == "output"
            for bit in bits:
                if isinstance(bit, int):
                    if output:
                        drivers[bit] = (cname, port)
                    else:
                        sinks[bit] += 1

    def hop(bit):
        return model.route + model.fanout * math.log2(max(sinks[bit], 1))

    memo = {}

    def inputs(b):
        """(input bit, arc delay with its hop) of the cell driving ``b``."""
        cname, oport = drivers[b]
        cell = cells[cname]
        for iport, ibits in cell["connections"].items():
            if cell["port_directions"].get(iport) != "input":
                continue
            arc = _arc(model, cell["type"], iport, oport)
            if arc is None:
                continue
            delay, routed = arc
            for ib in ibits:
                if isinstance(ib, int):
                    yield ib, delay + (hop(ib) if routed else 0.0)

    def start_point(b):
        driver = drivers.get(b)
        if driver is None:
            return (0.0, [(names.get(b, str(b)), "input")], 0)
        ctype = cells[driver[0]]["type"]
        if ctype in _COMB:
            return None
        start = model.bram_clk_to_q if ("RAM" in ctype or ctype.startswith("DP16")) else model.clk_to_q
        return (start, [(names.get(b, driver[0]), ctype)], 0)

    def arrival(bit):
        # Iterative depth-first walk: netlists are deeper than Python's
        # recursion limit.  A combinational loop is cut where it closes.
        visiting = set()
        stack = [(bit, False)]
        while stack:
            b, expanded = stack.pop()
            if b in memo:
                continue
            if not expanded:
                first = start_point(b)
                if first is not None:
                    memo[b] = first
                    continue
                visiting.add(b)
                stack.append((b, True))
                stack.extend((ib, False) for ib, _ in inputs(b) if ib not in memo and ib not in visiting)
                continue
            best = (0.0, [], 0)
            for ib, delay in inputs(b):
                if ib in memo:
                    t, path, levels = memo[ib]
                    if t + delay > best[0]:
                        best = (t + delay, path, levels)
            ctype = cells[drivers[b][0]]["type"]
            t, path, levels = best
            memo[b] = (t, path + [(names.get(b, drivers[b][0]), ctype)], levels + (ctype in _LUTS))
            visiting.discard(b)
        return memo[bit]

    found = []
    for cname, cell in cells.items():
        ctype = cell["type"]
        if ctype in _COMB and ctype != "TRELLIS_DPR16X4":
            continue
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) != "input" or port in _CLOCKS:
                continue
            if ctype == "TRELLIS_DPR16X4" and port.startswith("RAD"):
                continue
            for bit in bits:
                if isinstance(bit, int) and bit in drivers:
                    t, path, levels = arrival(bit)
                    found.append(Endpoint(t + hop(bit), cname, port, path, levels))
    found.sort(key=lambda e: -e.arrival)
    return found


def _shape(endpoint):
    """Endpoints of one vector (bits of a register, RAM data bits) share a shape."""
    return re.sub(r"\d+", "#", endpoint.cell) + "." + endpoint.port


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m prifence.logic_depth", description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist", help="yosys JSON netlist (build/synth/<target>-top/top.json)")
    parser.add_argument("--top", type=int, default=20, help="paths to show (one per register vector)")
    parser.add_argument("--above", type=float, default=None, help="show every path slower than this (ns)")
    parser.add_argument("--block", default=None, help="only endpoints in this block (e.g. cq, pq.lookup)")
    parser.add_argument("--summary", action="store_true", help="only the worst arrival per block")
    args = parser.parse_args(argv)
    with open(args.netlist) as f:
        found = endpoints(json.load(f))
    if args.block:
        found = [e for e in found if e.block == args.block or e.block.startswith(args.block + ".")
                 or e.block.split(".")[0] == args.block]
    if args.summary:
        worst = collections.OrderedDict()
        for e in found:
            worst.setdefault(e.block, e)
        for block, e in worst.items():
            print(f"{e.arrival:6.2f} ns  {e.levels:2d} LUT levels  {block:24s} {e.cell}.{e.port}")
        return 0
    seen = set()
    shown = 0
    for e in found:
        if args.above is not None and e.arrival <= args.above:
            break
        if _shape(e) in seen:
            continue
        seen.add(_shape(e))
        print(f"{e.arrival:6.2f} ns  {e.levels:2d} LUT levels  -> {e.cell}.{e.port}")
        for net, ctype in e.path:
            print(f"           {ctype:16s} {net}")
        shown += 1
        if args.above is None and shown >= args.top:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())

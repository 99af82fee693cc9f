"""The ``prifence`` command line.

It orchestrates: every subcommand calls into ``rtl``, ``sw_model`` or
``cocotb_tests`` and holds no protocol logic of its own.  Exit codes: 0
success, 1 a failed check or run, 2 bad usage.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def _positive_int(text):
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _add_rtl_params(p):
    g = p.add_argument_group("hardware parameters")
    g.add_argument("--data-width", type=int, choices=(64, 128), default=64,
                   help="memory data width in bits (default 64)")
    g.add_argument("--ingress-depth", type=_positive_int, default=16,
                   help="ingress FIFO depth (default 16)")
    g.add_argument("--dc-cache-entries", type=_positive_int, default=8,
                   help="device-context cache entries (default 8)")


def _rtl_params(args):
    return {"data_width": args.data_width, "ingress_depth": args.ingress_depth,
            "dc_cache_entries": args.dc_cache_entries}


def cmd_verilog(args):
    from rtl.top import generate_verilog
    text = generate_verilog(**_rtl_params(args))
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    ports = sum(1 for line in text.splitlines() if line.lstrip().startswith(("input ", "output ")))
    print(f"wrote {out} (module prifence_top, {ports} ports, {len(text.splitlines())} lines)")
    if args.lint:
        from rtl.top import lint_verilog
        report = lint_verilog(out)
        print(report.summary())
        if not report.ok:
            return 1
    return 0


def cmd_demo(args):
    from prifence.toolchain import setup_verilator
    setup_verilator()
    out = REPO / "build" / "prifence_top.v"
    print("== 1. Verilog of the top level")
    status = cmd_verilog(argparse.Namespace(output=str(out), lint=False, data_width=64,
                                            ingress_depth=16, dc_cache_entries=8))
    if status:
        return status
    print("\n== 2. Co-simulated page-request scenario (Verilator, cocotb)")
    from cocotb_tests.demo import run_demo
    return 0 if run_demo(seed=args.seed) else 1


def cmd_bench(args):
    from prifence.bench import run_benchmarks
    return run_benchmarks(quick=args.quick)


def cmd_regress(args):
    cmd = [sys.executable, "-m", "pytest", "cocotb_tests", "-q", "--junitxml", args.junit]
    if args.k:
        cmd += ["-k", args.k]
    if args.n:
        cmd += ["-n", str(args.n), "--dist", "loadgroup"]
    if args.shard:
        try:
            k, n = (int(x) for x in args.shard.split("/"))
        except ValueError:
            raise UsageError(f"--shard takes K/N, not {args.shard!r}") from None
        if not 1 <= k <= n:
            raise UsageError(f"--shard K/N needs 1 <= K <= N, not {args.shard!r}")
        cmd += ["--prifence-shard", f"{k}/{n}"]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO)


def cmd_synth(args):
    import json
    from prifence.synth import SynthError, synthesize
    try:
        result = synthesize(args.target, freq_mhz=args.freq, params=_rtl_params(args),
                            core=args.core, progress=not args.json, seed=args.seed)
    except SynthError as exc:
        print(f"prifence synth: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.table())
        print(f"reports in {result.workdir}")
    if not result.met:
        if not args.json:
            print(f"timing FAILED: {result.achieved_mhz:.1f} MHz < {result.requested_mhz:.1f} MHz",
                  file=sys.stderr)
        return 1
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="prifence",
        description="IOMMU PCIe PRI queue hardware and its driver/device models, co-simulated.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("verilog", help="write the Verilog of the top level (prifence_top)")
    p.add_argument("-o", "--output", default="build/prifence_top.v",
                   help="output file, or - for standard output (default build/prifence_top.v)")
    p.add_argument("--lint", action="store_true",
                   help="also lint it with verilator --lint-only -Wall and the project's waivers")
    _add_rtl_params(p)
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("demo", help="generate the Verilog and run a short co-simulated scenario")
    p.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="measure throughput, latency and simulation speed")
    p.add_argument("--quick", action="store_true", help="shorter runs")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("synth", help="synthesise, place and route for an FPGA and report Fmax/resources")
    p.add_argument("--target", choices=("ecp5", "ice40"), required=True)
    p.add_argument("--freq", type=float, help="requested clock in MHz (default: ecp5 150, ice40 48)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--core", choices=("top", "registers"), default="top",
                   help="what to implement (registers: a small quick configuration)")
    p.add_argument("--seed", type=int, default=1, help="placer seed")
    _add_rtl_params(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("regress", help="run the cocotb regressions and write JUnit XML")
    p.add_argument("-k", help="only tests matching this pytest expression")
    p.add_argument("-n", type=_positive_int, help="parallel workers (pytest-xdist)")
    p.add_argument("--shard", help="run shard K of N (K/N), for splitting across machines")
    p.add_argument("--seed", type=int, help="seed for the randomized tests")
    p.add_argument("--junit", default="build/regress.xml", help="JUnit XML output")
    p.set_defaults(func=cmd_regress)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"prifence {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

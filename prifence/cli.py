"""The ``prifence`` command line.

It orchestrates: every subcommand calls into ``rtl``, ``sw_model`` or
``cocotb_tests`` and holds no protocol logic of its own.  Exit codes: 0
success, 1 a failed check or run, 2 bad usage.
"""

import argparse
import os
import re
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


def _power_of_two(text):
    value = _positive_int(text)
    if value < 2 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of 2 of at least 2, not {value}")
    return value


def _addr_width(text):
    value = int(text)
    if not 32 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be in 32..64, not {value}")
    return value


def _add_rtl_params(p):
    g = p.add_argument_group("hardware parameters")
    g.add_argument("--data-width", type=int, choices=(64, 128), default=64,
                   help="memory data width in bits (default 64)")
    g.add_argument("--ingress-depth", type=_positive_int, default=16,
                   help="ingress FIFO depth (default 16)")
    g.add_argument("--dc-cache-entries", type=_positive_int, default=8,
                   help="device-context cache entries (default 8)")
    g.add_argument("--addr-width", type=_addr_width, default=56,
                   help="memory address width in bits, 32..64 (default 56)")
    g.add_argument("--max-in-flight", type=_power_of_two, default=16,
                   help="page requests decided but not yet retired, a power of 2 (default 16)")
    g.add_argument("--prefetch-depth", type=_positive_int, default=None,
                   help="commands the command queue fetches ahead (default 8)")


def _rtl_params(args):
    return {"data_width": args.data_width, "ingress_depth": args.ingress_depth,
            "dc_cache_entries": args.dc_cache_entries, "addr_width": args.addr_width,
            "max_in_flight": args.max_in_flight, "prefetch_depth": args.prefetch_depth}


def cmd_verilog(args):
    from rtl.top import generate_verilog
    text = generate_verilog(**_rtl_params(args))
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    header = re.search(r"module prifence_top\((.*?)\);", text, re.S)
    ports = len(header.group(1).split(",")) if header else 0
    print(f"wrote {out} (module prifence_top, {ports} ports, {len(text.splitlines())} lines)")
    if args.lint:
        from rtl.top import lint_verilog
        report = lint_verilog(out)
        print(report.summary())
        if not report.ok:
            return 1
    return 0


def cmd_demo(args):
    """Generate the Verilog, then check the seed policy (passes) and the
    reviewed policy (caught, with its timeline picture) on the RTL."""
    from prifence.toolchain import setup_verilator
    setup_verilator()
    out = REPO / "build" / "prifence_top.v"
    print("== 1. Verilog of the top level", flush=True)
    status = cmd_verilog(argparse.Namespace(output=str(out), lint=False, data_width=64,
                                            ingress_depth=16, dc_cache_entries=8))
    if status:
        return status
    seeds = ["--seeds", str(args.seeds), "--seed", str(args.seed)]
    print(f"\n== 2. prifence check --policy seed --scenario {args.scenario} "
          f"--seeds {args.seeds} --seed {args.seed} (the seed's flow, on the RTL)", flush=True)
    good = main(["check", "--policy", "seed", "--scenario", args.scenario, *seeds])
    print(f"\n== 3. prifence check --policy reviewed --scenario {args.scenario} "
          f"--seeds {args.seeds} --seed {args.seed} (the reviewed flow, on the RTL)", flush=True)
    caught = main(["check", "--policy", "reviewed", "--scenario", args.scenario, *seeds])
    print("\n== result")
    print(f"seed policy: {'passes' if good == 0 else 'FAILED'}; "
          f"reviewed policy: {'caught' if caught == 1 else 'NOT caught'}")
    return 0 if (good, caught) == (0, 1) else 1


def _check_args(args):
    from prifence.check import seeds_from
    if args.seeds is not None and args.seeds <= 0:
        raise UsageError(f"--seeds must be positive, not {args.seeds}")
    if not args.scale > 0:
        raise UsageError(f"--scale must be positive, not {args.scale}")
    return seeds_from(args.seed, args.seeds)


def _run_spec(fn, **kw):
    from cocotb_tests.cosim.run import CosimError
    from prifence.check import SpecError
    try:
        return fn(**kw)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    except CosimError as exc:
        print(f"prifence: {exc}", file=sys.stderr)
        return 1


def cmd_check(args):
    from prifence.check import run_check
    seeds = _check_args(args)
    return _run_spec(run_check, scenario=args.scenario, policy=args.policy, seeds=seeds,
                     engine=args.engine, scale=args.scale, waves=args.waves,
                     report_root=args.report, params=_rtl_params(args))


def cmd_diff(args):
    from prifence.check import run_diff
    seeds = _check_args(args)
    return _run_spec(run_diff, scenario=args.scenario, policy=args.policy, seeds=seeds,
                     scale=args.scale, report_root=args.report, params=_rtl_params(args))


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
    if args.soak:
        cmd += ["--soak"]
    Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO)


def cmd_synth(args):
    import json
    from prifence.synth import SynthError, synthesize
    # Hardware parameters given on the command line override the configuration's.
    defaults = _rtl_params(build_parser().parse_args(["synth", "--target", args.target]))
    params = {k: v for k, v in _rtl_params(args).items() if v != defaults[k]}
    if args.paths is not None:
        from prifence import logic_depth
        from prifence.synth import netlist
        try:
            work = netlist(args.target, params=params, config=args.config, core=args.core,
                           progress=not args.json)
        except SynthError as exc:
            print(f"prifence synth: {exc}", file=sys.stderr)
            return 1
        return logic_depth.main([str(work / "top.json"), "--top", str(args.paths)]
                                + (["--summary"] if args.paths == 0 else []))
    try:
        result = synthesize(args.target, freq_mhz=args.freq, params=params, config=args.config,
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

    p = sub.add_parser("demo", help="generate the Verilog, check the seed policy (passes) and "
                                    "the reviewed policy (caught) on the RTL")
    p.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per policy (default 3)")
    p.add_argument("--scenario", default="pri_off", help="scenario (default pri_off)")
    p.set_defaults(func=cmd_demo)

    for name, helptext in (
            ("check", "validate a driver fence sequence: run scenario seeds and check every "
                      "invariant (exit 0 none broken, 1 counter-example, 2 bad usage)"),
            ("diff", "run a scenario seed on the RTL, replay its stimulus on the transaction-level "
                     "model, report the first divergence")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--scenario", default="steady",
                       help="a shipped scenario name or path/to/file.py (default steady)")
        p.add_argument("--policy", default="seed",
                       help="a shipped policy (seed, reviewed) or path/to/file.py:ClassName "
                            "(default seed)")
        p.add_argument("--seed", type=int, help="the seed (with --seeds: the first seed)")
        p.add_argument("--seeds", type=int, help="run N seeds (from --seed, default 1)")
        p.add_argument("--scale", type=float, default=1.0,
                       help="multiply the scenario's request budgets (default 1.0)")
        p.add_argument("--report", help="report folder root (default build/check)")
        if name == "check":
            p.add_argument("--engine", choices=("rtl", "tlm"), default="rtl",
                           help="the RTL under Verilator (default) or the transaction-level model")
            p.add_argument("--waves", action="store_true",
                           help="write the waveform and timeline even when nothing breaks")
            p.set_defaults(func=cmd_check)
        else:
            p.set_defaults(func=cmd_diff)
        _add_rtl_params(p)

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
    p.add_argument("--paths", type=int, metavar="N",
                   help="synthesise only (no place and route) and list the N deepest "
                        "register-to-register paths by estimated delay (0: the worst per block)")
    p.add_argument("--config", choices=("default", "small"),
                   help="parameter set of the top (default: ecp5 'default', the DESIGN defaults; "
                        "ice40 'small', the one that fits a UP5K: see constraints/README.md)")
    _add_rtl_params(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("regress", help="run the cocotb regressions and write JUnit XML")
    p.add_argument("-k", help="only tests matching this pytest expression")
    p.add_argument("-n", type=_positive_int, help="parallel workers (pytest-xdist)")
    p.add_argument("--shard", help="run shard K of N (K/N), for splitting across machines")
    p.add_argument("--seed", type=int, help="seed for the randomized tests")
    p.add_argument("--soak", action="store_true",
                   help="many more seeds per co-simulated scenario (long)")
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

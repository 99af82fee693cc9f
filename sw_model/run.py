"""Command line for the software models: run, replay and benchmark scenarios.

    python -m sw_model.run --scenario pri_off --policy seed --seed 1234
    python -m sw_model.run --scenario all --seeds 200          # seeds 0..199 of each
    python -m sw_model.run --scenario overflow_storm --hardware early_pd --seed 26
    python -m sw_model.run --bench 5
    python -m sw_model.run --list

Exit status 0 when every run passed the checker, 1 otherwise.  It holds no
protocol logic: everything is in :mod:`sw_model.scenarios`.
"""

import argparse
import functools
import json
import sys

from .bench import seeds_per_second
from .scenarios import SCENARIOS, run_scenario, tlm_engine
from .variants import DRIVER_VARIANTS, HARDWARE_VARIANTS, SELF_TESTS


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sw_model.run", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="steady", help=f"one of {', '.join(SCENARIOS)}, or 'all'")
    p.add_argument("--policy", default="seed", choices=sorted(DRIVER_VARIANTS))
    p.add_argument("--hardware", default="tlm", choices=sorted(HARDWARE_VARIANTS))
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the request budgets")
    p.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                   help="scenario option, e.g. prgi_count=1 or 'handler_time=[200,600]'")
    p.add_argument("--verbose", action="store_true", help="print every run, and its counts")
    p.add_argument("--bench", type=float, metavar="SECONDS", help="report seeds/second and exit")
    p.add_argument("--list", action="store_true", help="list scenarios, policies and self-tests")
    args = p.parse_args(argv)

    if args.list:
        print("scenarios:", ", ".join(SCENARIOS))
        print("policies: ", ", ".join(sorted(DRIVER_VARIANTS)))
        print("hardware: ", ", ".join(sorted(HARDWARE_VARIANTS)))
        for t in SELF_TESTS:
            print(f"  invariant {t.invariant}: --policy {t.policy} --hardware {t.hardware} "
                  f"--scenario {t.scenario}" + (f" options {t.options}" if t.options else ""))
        return 0
    if args.bench:
        figures = seeds_per_second(args.bench)
        print(json.dumps(figures, indent=2))
        return 0 if not figures["violations"] else 1

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for name in names:
        if name not in SCENARIOS:
            p.error(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}")
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--option wants KEY=JSON, not {item!r}")
        options[key] = json.loads(value)
    factory = functools.partial(tlm_engine, hardware_cls=HARDWARE_VARIANTS[args.hardware])
    failures = runs = 0
    for name in names:
        for seed in range(args.seed, args.seed + args.seeds):
            r = run_scenario(name, DRIVER_VARIANTS[args.policy], seed, engine_factory=factory,
                             scale=args.scale, options=options)
            runs += 1
            if not r.ok:
                failures += 1
            if args.verbose or not r.ok or args.seeds == 1:
                print(r)
                if args.verbose:
                    print("   ", r.counts)
                if not r.ok:
                    hw = f" --hardware {args.hardware}" if args.hardware != "tlm" else ""
                    opts = "".join(f" --option '{k}={json.dumps(v)}'" for k, v in options.items())
                    print(f"    replay: {r.replay}{hw}{opts}")
    print(f"{runs - failures}/{runs} runs passed the checker")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

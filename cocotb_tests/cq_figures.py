"""Figures of the command queue measured on the Verilated top, for ``prifence bench``.

:func:`cq_rtl_figures` builds (or reuses) ``prifence_top`` at 64 and 128 bits,
runs the ``measure_figures`` bench of :mod:`cocotb_tests.cq_benches` on each
(against cocotbext-axi's RAM, which takes every beat at once) and returns the
numbers, all in clock cycles (see that bench's docstring for each figure).
"""

import json
import random
import tempfile
from pathlib import Path

from .sim import CocotbFailure, build, run

__all__ = ["cq_rtl_figures", "TARGETS"]

#: Issue 4's targets: figure -> (comparison, bound); ``prgr_per_clock_*`` is
#: compared with the memory-port bound of DESIGN §1 instead.
TARGETS = {
    "fence_after_response_av0": ("<=", 4),
    "fence_store_after_response": ("<=", 4),
    "fence_after_fetch_av0": ("<=", 8),
    "fence_after_fetch_av1": ("<=", 8),
}

_MODULE = "cocotb_tests.cq_benches"
_BENCH = "measure_figures"


def _measure(data_width, seed):
    sim = build({"data_width": data_width})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cq_figures.json"
        outcome = run(sim, _MODULE, [_BENCH], seed=seed,
                      extra_env={"PRIFENCE_BENCH_OUT": str(out)},
                      name=f"{_BENCH}-dw{data_width}")
        failure = outcome[_BENCH]
        if failure is not None and not out.exists():
            raise CocotbFailure(f"{_BENCH} (data width {data_width}) failed: {failure}")
        figures = json.loads(out.read_text())
    figures["target_failure"] = failure       # None, or the bench's assertion message
    return figures


def cq_rtl_figures(*, seed=None):
    """Measure the command queue on Verilator at 64 and 128 bits.

    Returns a dict: ``fence_after_response_av0``, ``fence_after_response_av1``,
    ``fence_store_after_response``, ``fence_store_answer_after_response``,
    ``fence_after_fetch_av0``,
    ``fence_after_fetch_av1`` (64-bit build, cycles), ``fence_*_dw128`` (the
    same at 128 bits), ``prgr_per_clock_64``/``_128`` with their bounds
    ``prgr_bound_per_clock_64``/``_128``, and ``missed``: the names of the
    figures that miss issue 4's targets (empty when all are met).  Raises
    :class:`CocotbFailure` if a bench could not measure.
    """
    seed = random.SystemRandom().randrange(1 << 32) if seed is None else seed
    result = {}
    missed = []
    for width in (64, 128):
        fig = _measure(width, seed)
        suffix = "" if width == 64 else "_dw128"
        for name in ("fence_after_response_av0", "fence_after_response_av1",
                     "fence_store_after_response", "fence_store_answer_after_response",
                     "fence_after_fetch_av0",
                     "fence_after_fetch_av1", "doorbell_to_first_response"):
            result[name + suffix] = fig[name]
            if name in TARGETS:
                op, bound = TARGETS[name]
                if not (fig[name] <= bound if op == "<=" else fig[name] >= bound):
                    missed.append(name + suffix)
        result[f"prgr_per_clock_{width}"] = fig["prgr_per_clock"]
        result[f"prgr_bound_per_clock_{width}"] = fig["prgr_bound_per_clock"]
        if fig["prgr_per_clock"] < 0.95 * fig["prgr_bound_per_clock"]:
            missed.append(f"prgr_per_clock_{width}")
    result["missed"] = missed
    return result

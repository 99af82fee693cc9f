"""Throughput figures of the page-request path, for ``prifence bench``.

:func:`pq_throughput` builds (or reuses) the Verilated top for a memory data
width, runs :mod:`cocotb_tests.perf_benches` against cocotbext-axi's RAM (which
takes every beat at once) and returns the figures, all in clock cycles.
"""

import json
import random
import tempfile
from pathlib import Path

from .sim import CocotbFailure, build, run

__all__ = ["pq_throughput"]


def pq_throughput(data_width=64, *, requests=512, seed=None):
    """Measure the page-request path at ``data_width`` (64 or 128).

    Returns a dict: ``ingest_first_fifo_per_clock`` (page_req handshakes per
    clock while the ingress FIFO fills), ``ingest_per_clock`` (over the whole
    run), ``pq_records_per_clock`` (records written per clock, first beat to
    last), ``bound_records_per_clock`` (the memory-port bound of DESIGN §1:
    0.5 at 64 bits, 1.0 at 128), plus the request count and data width.
    Raises :class:`CocotbFailure` if a record was wrong or out of order.
    """
    if data_width not in (64, 128):
        raise ValueError(f"data_width must be 64 or 128, not {data_width!r}")
    if not isinstance(requests, int) or requests < 32:
        raise ValueError(f"requests must be an integer of at least 32, not {requests!r}")
    sim = build({"data_width": data_width})
    seed = random.SystemRandom().randrange(1 << 32) if seed is None else seed
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pq_throughput.json"
        outcome = run(sim, "cocotb_tests.perf_benches", ["pq_throughput"], seed=seed,
                      extra_env={"PRIFENCE_BENCH_OUT": str(out),
                                 "PRIFENCE_BENCH_REQUESTS": str(requests)},
                      name=f"pq_throughput-dw{data_width}")
        failure = outcome["pq_throughput"]
        if failure is not None:
            raise CocotbFailure(f"pq_throughput (data width {data_width}) failed: {failure}")
        return json.loads(out.read_text())

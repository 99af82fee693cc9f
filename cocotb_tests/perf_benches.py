"""cocotb throughput bench of the page-request path (DESIGN.md §1 "Parameters").

Run by :func:`cocotb_tests.bench.pq_throughput`; results go to the JSON file
named by ``PRIFENCE_BENCH_OUT``.  Figures are counted in clock cycles at the
Verilated top level, so they do not depend on the host's speed.
"""

import json
import os

import cocotb
from cocotb.triggers import RisingEdge

from prifence.formats import PAGE_SHIFT, PQ_RECORD_BYTES
from sw_model.disposition import pq_record

from .tb import TB, Layout, cycles_now, request


@cocotb.test()
async def pq_throughput(dut):
    """Back-to-back L=0 requests for one cached, good context into a large PQ,
    against a memory that takes every beat at once: ingest rate (page_req
    handshakes per clock, first ``ingress_depth`` requests and overall) and
    PQ records per clock (record write beats, first to last)."""
    count = int(os.environ.get("PRIFENCE_BENCH_REQUESTS", "512"))
    tb = TB(dut)
    await tb.setup(dids=(1,), pq_log2sz_1=10)                   # 2048 entries
    warm = request(did=1, l=0)                                   # fills the context cache
    await tb.device.page_request(**warm)
    await tb.wait_field("pqt", "index", 1)
    tb.write_log.clear()
    tb.device.accepted.clear()
    reqs = [request(did=1, prgi=k % 512, l=0, addr=k) for k in range(count)]
    for req in reqs:
        tb.device.queue.append(req)
    await tb.device.wait_idle(timeout=20 * count)
    await tb.wait_field("pqt", "index", 1 + count, timeout=20 * count)
    records = [tb.pq_record(1 + k) for k in range(count)]
    assert records == [pq_record(r) for r in reqs], "a record is wrong or out of order"

    accepted = [cycle for cycle, _ in tb.device.accepted]
    depth = tb.params.get("ingress_depth", 16)
    burst = accepted[:depth]
    pq_lo = (Layout.PQ_PPN << PAGE_SHIFT) + PQ_RECORD_BYTES
    beats = [cycle for cycle, addr, _ in tb.write_log
             if pq_lo <= addr < pq_lo + count * PQ_RECORD_BYTES]
    first, last = beats[0], beats[-1]
    result = {
        "data_width": tb.data_width,
        "requests": count,
        "ingest_first_fifo_per_clock": round((len(burst) - 1) / max(1, burst[-1] - burst[0]), 3),
        "ingest_per_clock": round((len(accepted) - 1) / max(1, accepted[-1] - accepted[0]), 3),
        "pq_records_per_clock": round(count / (last - first + 1), 3),
        "bound_records_per_clock": tb.data_width / (8 * PQ_RECORD_BYTES),
        "cycles_first_accept_to_last_beat": last - accepted[0],
    }
    result.update(await _visible_latency(tb, dut, next_slot=1 + count))
    dut._log.info("pq_throughput: %s", result)
    out = os.environ.get("PRIFENCE_BENCH_OUT")
    if out:
        with open(out, "w") as handle:
            json.dump(result, handle)


async def _visible_latency(tb, dut, *, next_slot):
    """One request alone on an idle path (its context cached): cycles from its
    acceptance on ``page_req`` to its record's last write beat, and to the cycle
    ``pqt`` has moved past it (read inside the design: the register read path
    would add its own latency)."""
    pqt = dut.core.pq.pqt
    await tb.cycles(20)
    before = len(tb.device.accepted)
    tb.write_log.clear()
    tb.device.queue.append(request(did=1, l=0, addr=0xABC))
    for _ in range(200):
        await RisingEdge(tb.clock)
        if int(pqt.value) == next_slot + 1:
            break
    else:
        raise AssertionError("the record did not become visible within 200 cycles")
    visible = cycles_now()
    accepted = tb.device.accepted[before][0]
    written = tb.write_log[-1][0]
    return {"request_to_record_latency": written - accepted,
            "request_to_visible_latency": visible - accepted}

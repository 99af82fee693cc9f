"""cocotb benches of the page-request path (DESIGN.md §2 queue rules, §4 disposition).

Run through pytest (``cocotb_tests/test_page_requests.py``); each ``@cocotb.test``
here is one pytest item.  Every expectation is computed by the reference model
:mod:`sw_model.disposition` from the request and the state the bench set up.
"""

import os
import random
from collections import Counter

import cocotb

from prifence.formats import (
    COMMAND_BYTES, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, PAGE_SHIFT, PQ_RECORD_BYTES, REG, REGISTERS,
    DdtpMode, DeviceContextTc, InvalDdtCmd, IofenceCmd, Opcode, ResponseCode, codec,
)
from sw_model.disposition import decide, fq_record, pq_record, store_fault_response

from .tb import TB, Layout, WaitTimeout, bench_seed, request

_TC = codec(DeviceContextTc)

def _mix(did, prgi=0x11):
    """A mix of requests exercising L, PV and Stop Markers."""
    return [
        request(did=did, prgi=prgi, addr=0xABCDE, l=1),                         # L=1, no PASID
        request(did=did, pv=1, pid=0x4321, priv=1, exec=1, w=1, prgi=prgi + 1, l=1),  # with PASID
        request(did=did, pv=1, pid=0x77, prgi=prgi + 2, l=0, addr=0x5),           # L=0
        request(did=did, pv=1, pid=0x99, r=0, w=0, l=1, prgi=prgi + 3),            # Stop Marker
    ]


def _pqcsr(value, field):
    return REG["pqcsr"].get(value, field)


def model(req, *, ddtp_mode=DdtpMode.LVL1, tc=None, load_fault=False, on=True, mf=False,
          of=False, full=False):
    return decide(req, ddtp_mode=int(ddtp_mode), dc_tc=tc, dc_load_fault=load_fault, pq_on=on,
                  pq_mf=mf, pq_of=of, pq_full=full)


async def send_all(tb, reqs):
    for req in reqs:
        tb.device.queue.append(req)
    await tb.device.wait_idle()


async def expect_outcome(tb, reqs, dispositions, *, pqt=0, fq_base=0, settle=60):
    """Send ``reqs``; check responses, FQ records and that no PQ record moved pqt."""
    start = len(tb.prg.received)
    await send_all(tb, reqs)
    want_resp = [d.response for d in dispositions if d.response is not None]
    want_fq = [fq_record(r, d.fq_cause) for r, d in zip(reqs, dispositions) if d.fq_cause is not None]
    got = await tb.prg.wait_count(start + len(want_resp))
    await tb.wait_field("fqt", "index", fq_base + len(want_fq))
    await tb.cycles(settle)
    assert tb.prg.responses()[start:] == want_resp, (tb.prg.responses()[start:], want_resp)
    for k, rec in enumerate(want_fq):
        assert tb.fq_record(fq_base + k) == rec, f"FQ record {fq_base + k}"
    assert await tb.read_reg("pqt") == pqt
    return got


# --- one bench per row of DESIGN §4 ------------------------------------------------

@cocotb.test()
async def row_ddtp_off(dut):
    """ddtp Off: Response Failure (PASID kept), cause 256 for every request."""
    tb = TB(dut)
    await tb.reset()
    tb.write_dc(1, tb.good_tc())
    await tb.enable_pq()
    await tb.enable_fq()
    reqs = _mix(1)
    await expect_outcome(tb, reqs, [model(r, ddtp_mode=DdtpMode.OFF) for r in reqs])


@cocotb.test()
async def row_ddtp_bare(dut):
    """ddtp Bare: Invalid Request without PASID, cause 260."""
    tb = TB(dut)
    await tb.setup()
    await tb.set_ddtp(DdtpMode.BARE)
    reqs = _mix(1)
    await expect_outcome(tb, reqs, [model(r, ddtp_mode=DdtpMode.BARE) for r in reqs])


@cocotb.test()
async def row_did_too_wide(dut):
    """device_id with bits above [6:0] (bus or segment numbers): Invalid Request, 260,
    and no context read, even where did[6:0] names a good context."""
    tb = TB(dut)
    await tb.setup(dids=(1,))
    reqs = _mix(0x81) + _mix(0x100001, prgi=0x40)
    reads_before = len(tb.read_log)
    await expect_outcome(tb, reqs, [model(r) for r in reqs])
    assert tb.read_log[reads_before:] == [], "a too-wide device_id read a context"


@cocotb.test()
async def row_dc_load_fault(dut):
    """A faulting dw0 read: Response Failure, 257; the context is not cached."""
    tb = TB(dut)
    await tb.setup(dids=(3,))
    dc = (Layout.DDT_PPN << PAGE_SHIFT) + 3 * 32
    tb.inject_errors(dc, dc + 8, writes=False)
    reqs = _mix(3)
    await expect_outcome(tb, reqs, [model(r, load_fault=True) for r in reqs])
    tb.clear_errors()
    req = await tb.device.page_request(did=3, prgi=7, addr=0x42)
    await tb.wait_field("pqt", "index", 1)
    assert tb.pq_record(0) == pq_record(req)


@cocotb.test()
async def row_dc_invalid(dut):
    """DC.V=0: Response Failure, 258; not cached (a later valid context is read)."""
    tb = TB(dut)
    await tb.setup(dids=())
    tc = tb.write_dc(2, _TC.pack(v=0, en_ats=1, en_pri=1, prpr=1))
    reqs = _mix(2)
    await expect_outcome(tb, reqs, [model(r, tc=tc) for r in reqs])
    tb.write_dc(2, tb.good_tc())
    req = await tb.device.page_request(did=2, prgi=9)
    await tb.wait_field("pqt", "index", 1)
    assert tb.pq_record(0) == pq_record(req)


_MISCONFIGURED = [
    dict(v=1, en_ats=0, en_pri=1),                     # EN_PRI without EN_ATS
    dict(v=1, en_ats=1, en_pri=0, prpr=1),             # PRPR without EN_PRI
    dict(v=1, en_ats=1, en_pri=1, t2gpa=1),
    dict(v=1, en_ats=1, en_pri=1, dpe=1),              # DPE without PDTV
    dict(v=1, en_ats=1, en_pri=1, gade=1),
    dict(v=1, en_ats=1, en_pri=1, sade=1),
    dict(v=1, en_ats=1, en_pri=1, sbe=1),
    dict(v=1, en_ats=1, en_pri=1, sxl=1),
    dict(v=1, en_ats=1, en_pri=1, _rsvd0=1 << 5),      # reserved [23:12]
    dict(v=1, en_ats=1, en_pri=1, _rsvd1=1 << 31),     # reserved [63:32]
]


@cocotb.test()
async def row_dc_misconfigured(dut):
    """Every misconfiguration of §3: Response Failure, 259, nothing cached; bits
    [31:24] are ignored (a context with them set is good)."""
    tb = TB(dut)
    await tb.setup(dids=())
    reqs, dispositions = [], []
    for did, fields in enumerate(_MISCONFIGURED, start=10):
        tc = tb.write_dc(did, _TC.pack(**fields))
        for req in _mix(did, prgi=did):
            reqs.append(req)
            dispositions.append(model(req, tc=tc))
    await expect_outcome(tb, reqs, dispositions)
    # Fixed in memory, each context is read again (nothing was cached).
    custom = tb.write_dc(10, _TC.pack(v=1, en_ats=1, en_pri=1, custom=0xA5))
    assert model(request(did=10), tc=custom).write_record
    req = await tb.device.page_request(did=10, prgi=1)
    await tb.wait_field("pqt", "index", 1)
    assert tb.pq_record(0) == pq_record(req)


@cocotb.test()
async def row_pri_disabled(dut):
    """EN_ATS=0 or EN_PRI=0: Invalid Request, cause 260 unless DTF=1; PRPR=0 here."""
    tb = TB(dut)
    await tb.setup(dids=())
    reqs, dispositions = [], []
    for did, fields in ((20, dict(v=1)), (21, dict(v=1, en_ats=1)), (22, dict(v=1, en_ats=1, dtf=1)),
                        (23, dict(v=1, dtf=1))):
        tc = tb.write_dc(did, _TC.pack(**fields))
        for req in _mix(did, prgi=did):
            reqs.append(req)
            dispositions.append(model(req, tc=tc))
    assert sum(d.fq_cause is not None for d in dispositions) == 8    # DTF suppresses 2 × 4
    await expect_outcome(tb, reqs, dispositions)


@cocotb.test()
async def row_pq_off(dut):
    """pqen=0 (pqon=0) and pqmf set: Response Failure with the PASID, no FQ record."""
    tb = TB(dut)
    await tb.reset()
    tc = tb.write_dc(1, tb.good_tc())
    await tb.set_ddtp(DdtpMode.LVL1)
    await tb.enable_fq()
    reqs = _mix(1)
    await expect_outcome(tb, reqs, [model(r, tc=tc, on=False) for r in reqs])
    # pqmf set (by a store fault), queue enabled.
    await tb.enable_pq()
    rec0 = Layout.PQ_PPN << PAGE_SHIFT
    tb.inject_errors(rec0, rec0 + PQ_RECORD_BYTES, reads=False)
    first = request(did=1, prgi=0x50, l=0)
    await send_all(tb, [first])
    await tb.wait_field("pqcsr", "pqmf", 1)
    tb.clear_errors()
    reqs = _mix(1, prgi=0x60)
    await expect_outcome(tb, reqs, [model(r, tc=tc, mf=True) for r in reqs])


@cocotb.test()
async def row_pq_overflow(dut):
    """Full queue: Success (PASID only with PRPR=1) and pqof; then pqof alone
    keeps answering Success after software makes room, until cleared."""
    tb = TB(dut)
    await tb.setup(dids=(1, 2), pq_log2sz_1=1)               # 4 entries: 3 records fit
    tc1 = tb.good_tc()
    tc2 = tb.write_dc(2, tb.good_tc(prpr=1))
    fill = [request(did=1, prgi=k, l=0, addr=k) for k in range(3)]
    await send_all(tb, fill)
    await tb.wait_field("pqt", "index", 3)
    reqs = _mix(1, prgi=0x20) + _mix(2, prgi=0x30)
    dispositions = [model(r, tc=tc1 if r["did"] == 1 else tc2, full=True) for r in reqs]
    assert all(d.set_pqof for d in dispositions)
    await expect_outcome(tb, reqs, dispositions, pqt=3)
    assert await tb.read_field("pqcsr", "pqof") == 1
    assert [tb.pq_record(k) for k in range(3)] == [pq_record(r) for r in fill]
    # Room again, but pqof still set: still Success, nothing written.
    await tb.consume_pq()
    reqs = _mix(1, prgi=0x40)
    await expect_outcome(tb, reqs, [model(r, tc=tc1, of=True) for r in reqs], pqt=3)
    # Clearing pqof (W1C) resumes recording at pqt.
    await tb.write_reg("pqcsr", pqen=1, pie=1, pqof=1)
    assert await tb.read_field("pqcsr", "pqof") == 0
    req = await tb.device.page_request(did=1, prgi=0x70, addr=0x777)
    await tb.wait_field("pqt", "index", 0)
    assert tb.pq_record(3) == pq_record(req)


@cocotb.test()
async def row_pq_store_fault(dut):
    """A record store that answers SLVERR: pqmf, pqt stays before it, Response
    Failure for it (PASID kept); after clearing pqmf the next record goes to pqt."""
    tb = TB(dut)
    await tb.setup(dids=(1,), pq_log2sz_1=3)
    tc = tb.good_tc(prpr=0)
    ok = request(did=1, prgi=1, l=0, addr=1)
    await send_all(tb, [ok])
    await tb.wait_field("pqt", "index", 1)
    slot1 = (Layout.PQ_PPN << PAGE_SHIFT) + PQ_RECORD_BYTES
    tb.inject_errors(slot1, slot1 + PQ_RECORD_BYTES, reads=False)
    bad = request(did=1, pv=1, pid=0x1234, prgi=2, l=1, addr=2)
    await send_all(tb, [bad])
    await tb.prg.wait_count(1)
    assert tb.prg.responses() == [store_fault_response(bad, dc_tc=tc)]
    assert await tb.read_field("pqcsr", "pqmf") == 1
    assert await tb.read_reg("pqt") == 1
    assert int(dut.irq_pq.value) == 1
    tb.clear_errors()
    await tb.write_reg("pqcsr", pqen=1, pie=1, pqmf=1)
    again = request(did=1, prgi=3, l=1, addr=3)
    await send_all(tb, [again])
    await tb.wait_field("pqt", "index", 2)
    assert tb.pq_record(1) == pq_record(again)


@cocotb.test()
async def row_queued(dut):
    """The record layout (PV=0 clears PID/PRIV/EXEC), pqt after the write, pip."""
    tb = TB(dut)
    await tb.setup(dids=(5,))
    await tb.write_reg("ipsr", pip=1)
    assert int(dut.irq_pq.value) == 0
    reqs = [request(did=5, pv=1, pid=0xFFFFF, priv=1, exec=1, r=1, w=1, l=0, prgi=0x1FF,
                    addr=(1 << 52) - 1),
            request(did=5, pv=0, pid=0x12345, priv=1, exec=1, r=1, w=0, l=1, prgi=3, addr=0x1),
            request(did=5, pv=1, pid=0x42, r=0, w=0, l=1, prgi=4)]          # Stop Marker: queued
    for r in reqs:
        assert model(r, tc=tb.good_tc()).write_record
    await send_all(tb, reqs)
    await tb.wait_field("pqt", "index", 3)
    assert [tb.pq_record(k) for k in range(3)] == [pq_record(r) for r in reqs]
    assert int(dut.irq_pq.value) == 1
    await tb.cycles(30)
    assert tb.prg.received == []           # queued requests get no auto-response


@cocotb.test()
async def fault_queue_overflow_and_store_fault(dut):
    """FQ: a full queue drops the record and sets fqof (fip); after clearing it
    records resume at fqt; a record store that answers SLVERR sets fqmf, fqt
    stays; a disabled FQ drops records silently; the auto-responses are
    unchanged throughout."""
    tb = TB(dut)
    await tb.reset()
    await tb.enable_pq()
    await tb.enable_fq(log2sz_1=0)                              # 2 entries: 1 record fits
    reqs = [request(did=1, prgi=k, l=k % 2) for k in range(3)]
    want = [model(r, ddtp_mode=DdtpMode.OFF) for r in reqs]
    await send_all(tb, reqs)
    await tb.prg.wait_count(sum(d.response is not None for d in want))
    await tb.wait_field("fqcsr", "fqof", 1)
    assert await tb.read_reg("fqt") == 1
    assert tb.fq_record(0) == fq_record(reqs[0], want[0].fq_cause)
    assert int(dut.irq_fq.value) == 1
    await tb.write_reg("fqh", index=1)                          # consume
    await tb.write_reg("fqcsr", fqen=1, fie=1, fqof=1)
    more = request(did=2, pv=1, pid=0x55, priv=1, l=0)
    await send_all(tb, [more])
    await tb.wait_field("fqt", "index", 0)
    assert tb.fq_record(1) == fq_record(more, model(more, ddtp_mode=DdtpMode.OFF).fq_cause)
    # Store fault on slot 0.
    slot0 = Layout.FQ_PPN << PAGE_SHIFT
    tb.inject_errors(slot0, slot0 + 32, reads=False)
    await tb.write_reg("fqh", index=0)
    await send_all(tb, [request(did=3, l=0)])
    await tb.wait_field("fqcsr", "fqmf", 1)
    assert await tb.read_reg("fqt") == 0
    tb.clear_errors()
    # Disabled: nothing is written, fqon drops, responses still come.
    await tb.write_reg("fqcsr", fqen=0, fie=1, fqmf=1)
    await tb.wait_field("fqcsr", "fqon", 0)
    tb.clear_queue_memory(Layout.FQ_PPN, 64)
    start = len(tb.prg.received)
    last = request(did=4, l=1, prgi=0x1AB)
    await send_all(tb, [last])
    await tb.prg.wait_count(start + 1)
    assert tb.prg.responses()[-1] == model(last, ddtp_mode=DdtpMode.OFF).response
    await tb.cycles(30)
    assert tb.ram.read(slot0, 64) == bytes(64) and await tb.read_reg("fqt") == 0


# --- queue mechanics --------------------------------------------------------------------

@cocotb.test()
async def wrap_around(dut):
    """Several queue sizes: records land at index mod size, pqt wraps, none lost."""
    tb = TB(dut)
    rng = random.Random(bench_seed())
    for log2sz_1 in (0, 1, 2, 4):
        size = 1 << (log2sz_1 + 1)
        await tb.setup(dids=(1, 2), pq_log2sz_1=log2sz_1)
        tb.clear_queue_memory(Layout.PQ_PPN, size * PQ_RECORD_BYTES)
        head = 0
        for round_ in range(3):
            batch = [request(did=rng.choice((1, 2)), prgi=rng.randrange(512), l=rng.randrange(2),
                             addr=rng.randrange(1 << 52)) for _ in range(size - 1)]
            await send_all(tb, batch)
            tail = (head + len(batch)) % size
            await tb.wait_field("pqt", "index", tail)
            got = await tb.consume_pq()
            assert got == [pq_record(r) for r in batch], f"size {size} round {round_}"
            head = tail
        assert await tb.read_field("pqcsr", "pqof") == 0


@cocotb.test()
async def overflow_recovery(dut):
    """Full → pqof → consume and clear → recording resumes, records in order."""
    tb = TB(dut)
    await tb.setup(dids=(1,), pq_log2sz_1=2)                   # 8 entries
    tc = tb.good_tc()
    reqs = [request(did=1, prgi=k, addr=k, l=k % 2) for k in range(12)]
    want = [model(r, tc=tc, full=k >= 7) for k, r in enumerate(reqs)]
    await send_all(tb, reqs)
    await tb.wait_field("pqt", "index", 7)
    await tb.prg.wait_count(sum(d.response is not None for d in want))
    assert tb.prg.responses() == [d.response for d in want if d.response]
    assert await tb.read_field("pqcsr", "pqof") == 1
    assert await tb.consume_pq() == [pq_record(r) for r in reqs[:7]]
    await tb.write_reg("pqcsr", pqen=1, pie=1, pqof=1)
    more = [request(did=1, prgi=100 + k, addr=k) for k in range(5)]
    await send_all(tb, more)
    await tb.wait_field("pqt", "index", (7 + 5) % 8)
    assert await tb.consume_pq() == [pq_record(r) for r in more]


@cocotb.test()
async def store_fault_discards_later_records(dut):
    """Records issued after a faulting one are discarded (L=1 ones answered
    Response Failure); pqt stays on the fault; recovery writes at pqt."""
    tb = TB(dut)
    await tb.setup(dids=(1,), pq_log2sz_1=4)                   # 32 entries
    tc = tb.good_tc(prpr=1)
    tb.write_dc(1, tc)
    await tb.set_ddtp(DdtpMode.OFF)
    await tb.set_ddtp(DdtpMode.LVL1)                           # flush the cached context
    base = Layout.PQ_PPN << PAGE_SHIFT
    tb.inject_errors(base + 2 * PQ_RECORD_BYTES, base + 3 * PQ_RECORD_BYTES, reads=False)
    # Slow B responses keep several records in flight behind the faulting one.
    tb.hold_write_responses()
    reqs = [request(did=1, pv=k % 2, pid=k, prgi=k, l=1, addr=k) for k in range(8)]
    await send_all(tb, reqs)
    await tb.cycles(40)
    tb.hold_write_responses(False)
    want = [store_fault_response(r, dc_tc=tc) for r in reqs[2:]]
    await tb.prg.wait_count(len(want))
    assert tb.prg.responses() == want
    assert await tb.read_reg("pqt") == 2
    assert await tb.read_field("pqcsr", "pqmf") == 1
    assert [tb.pq_record(k) for k in range(2)] == [pq_record(r) for r in reqs[:2]]
    tb.clear_errors()
    await tb.write_reg("pqcsr", pqen=1, pie=1, pqmf=1)
    again = request(did=1, prgi=0x99, l=0, addr=0x99)
    await send_all(tb, [again])
    await tb.wait_field("pqt", "index", 3)
    assert tb.pq_record(2) == pq_record(again)


@cocotb.test()
async def disable_with_writes_in_flight(dut):
    """pqen 1→0 while records are in flight: pqon and busy stay 1 until they
    are acknowledged and published; a write to pqcsr while busy is ignored;
    later requests get Response Failure; re-enabling zeroes pqt."""
    tb = TB(dut)
    await tb.setup(dids=(1,), pq_log2sz_1=3)
    tc = tb.good_tc()
    tb.hold_write_responses()
    reqs = [request(did=1, prgi=k, addr=k, l=0) for k in range(4)]
    await send_all(tb, reqs)
    await tb.cycles(20)
    await tb.write_reg("pqcsr", pqen=0, pie=1)
    csr = await tb.read_reg("pqcsr")
    assert _pqcsr(csr, "pqon") == 1 and _pqcsr(csr, "busy") == 1 and _pqcsr(csr, "pqen") == 0
    await tb.write_reg("pqcsr", pqen=1, pie=1)                 # ignored while busy
    assert await tb.read_field("pqcsr", "pqen") == 0
    late = request(did=1, pv=1, pid=5, prgi=0x33, l=1)
    await send_all(tb, [late])
    await tb.cycles(30)
    # Its Response Failure waits behind the earlier records (arrival order).
    assert tb.prg.received == [] and await tb.read_reg("pqt") == 0
    tb.hold_write_responses(False)
    await tb.prg.wait_count(1)
    assert tb.prg.responses() == [model(late, tc=tc, on=False).response]
    await tb.wait_field("pqcsr", "pqon", 0)
    assert await tb.read_reg("pqt") == 4                       # published before pqon dropped
    assert [tb.pq_record(k) for k in range(4)] == [pq_record(r) for r in reqs]
    assert await tb.read_field("pqcsr", "busy") == 0
    await tb.write_reg("pqcsr", pqen=1, pie=1)
    await tb.wait_field("pqcsr", "pqon", 1)
    assert await tb.read_reg("pqt") == 0


@cocotb.test()
async def pasid_and_prpr_rules(dut):
    """PASID on auto-responses: only if the request had one and (Response Failure
    or PRPR=1); PRPR counts as 0 without a usable context."""
    tb = TB(dut)
    await tb.setup(dids=(1, 2), pq_log2sz_1=0)                 # 2 entries: 1 record fits
    prpr_tc = tb.write_dc(2, tb.good_tc(prpr=1))
    tc = tb.good_tc()
    filler = request(did=1, l=0)
    await send_all(tb, [filler])
    await tb.wait_field("pqt", "index", 1)
    reqs = [request(did=1, pv=1, pid=0x123, prgi=1), request(did=2, pv=1, pid=0x456, prgi=2),
            request(did=2, pv=0, pid=0x456, prgi=3)]
    want = [model(reqs[0], tc=tc, full=True), model(reqs[1], tc=prpr_tc, full=True),
            model(reqs[2], tc=prpr_tc, full=True)]
    await expect_outcome(tb, reqs, want, pqt=1)
    got = tb.prg.responses()
    assert got[0]["pv"] == 0 and got[0]["pid"] == 0 and got[1]["pv"] == 1 and got[1]["pid"] == 0x456
    assert got[2]["pv"] == 0 and all(r["code"] == ResponseCode.SUCCESS for r in got)
    # Bare: no context, Invalid Request: no PASID even though the DC has PRPR=1.
    await tb.set_ddtp(DdtpMode.BARE)
    bare = [request(did=2, pv=1, pid=0x456, prgi=4)]
    await expect_outcome(tb, bare, [model(bare[0], ddtp_mode=DdtpMode.BARE)], pqt=1)
    assert tb.prg.responses()[-1]["pv"] == 0


@cocotb.test()
async def arrival_order_under_backpressure(dut):
    """Mixed dispositions with random stalls on every memory channel and on
    prg_resp: responses and records keep arrival order."""
    tb = TB(dut)
    rng = random.Random(bench_seed())
    await tb.setup(dids=(1, 2, 3), pq_log2sz_1=6)
    tcs = {1: tb.good_tc(), 2: tb.write_dc(2, _TC.pack(v=1, en_ats=1)), 3: tb.write_dc(3, _TC.pack(v=0))}
    await tb.set_ddtp(DdtpMode.OFF)
    await tb.set_ddtp(DdtpMode.LVL1)
    tb.memory_backpressure(rng, 0.4)
    tb.prg.set_backpressure((rng, 0.6))
    reqs = [request(did=rng.choice((1, 1, 2, 3)), pv=rng.randrange(2), pid=rng.randrange(1 << 20),
                    prgi=k % 512, l=rng.randrange(2), addr=k) for k in range(60)]
    want = [model(r, tc=tcs[r["did"]]) for r in reqs]
    await send_all(tb, reqs)
    n_rec = sum(d.write_record for d in want)
    await tb.prg.wait_count(sum(d.response is not None for d in want), timeout=20000)
    await tb.wait_field("pqt", "index", n_rec, timeout=20000)
    assert tb.prg.responses() == [d.response for d in want if d.response is not None]
    assert [tb.pq_record(k) for k in range(n_rec)] == [pq_record(r) for r, d in zip(reqs, want)
                                                       if d.write_record]


@cocotb.test()
async def interrupts(dut):
    """irq_pq follows pip: set by a record (with pie=1) no earlier than pqt moves,
    cleared by W1C, not set with pie=0, set by pqof; irq_fq by an FQ record."""
    tb = TB(dut)
    await tb.reset()
    tb.write_dc(1, tb.good_tc())
    await tb.set_ddtp(DdtpMode.LVL1)
    await tb.enable_pq(pie=0, log2sz_1=0)
    await tb.enable_fq(fie=1)
    await send_all(tb, [request(did=1, l=0)])
    await tb.wait_field("pqt", "index", 1)
    assert int(dut.irq_pq.value) == 0 and await tb.read_field("ipsr", "pip") == 0
    await tb.write_reg("pqcsr", pqen=1, pie=1)
    await tb.cycles(5)
    assert int(dut.irq_pq.value) == 0                 # turning pie on does not set pip
    await tb.consume_pq()
    # pip rises only after pqt has moved.
    tb.device.send_nowait(did=1, l=0, prgi=2)
    await tb.wait_until(lambda: int(dut.irq_pq.value) == 1, timeout=200, what="irq_pq")
    assert await tb.read_reg("pqt") == 0              # (1 + 1) mod 2
    await tb.write_reg("ipsr", pip=1)
    assert int(dut.irq_pq.value) == 0
    # Full: pqof sets pip.
    await send_all(tb, [request(did=1, l=1, prgi=3)])
    await tb.prg.wait_count(1)
    assert await tb.read_field("pqcsr", "pqof") == 1
    assert int(dut.irq_pq.value) == 1
    # W1C of pip while pqof stays set: pip is set again at once.
    await tb.write_reg("ipsr", pip=1)
    assert await tb.read_field("ipsr", "pip") == 1
    # FQ: ddtp Off → cause 256 record → fip.
    assert int(dut.irq_fq.value) == 0
    await tb.set_ddtp(DdtpMode.OFF)
    await send_all(tb, [request(did=1, l=0)])
    await tb.wait_field("fqt", "index", 1)
    assert int(dut.irq_fq.value) == 1


@cocotb.test()
async def context_cache_and_ddtp_write(dut):
    """A cached context is used even after memory changes; an accepted ddtp write
    empties the cache; an ignored one (1LVL→1LVL, bad mode) does not."""
    tb = TB(dut)
    await tb.setup(dids=(4,))
    await send_all(tb, [request(did=4, l=0)])
    await tb.wait_field("pqt", "index", 1)
    invalid = tb.write_dc(4, _TC.pack(v=0))
    await tb.write_reg("ddtp", iommu_mode=DdtpMode.LVL1, ppn=Layout.DDT_PPN)   # ignored
    await tb.write_reg("ddtp", iommu_mode=7, ppn=Layout.DDT_PPN)                # ignored
    assert await tb.read_field("ddtp", "iommu_mode") == DdtpMode.LVL1
    await send_all(tb, [request(did=4, l=0, prgi=1)])
    await tb.wait_field("pqt", "index", 2)                     # still the cached context
    await tb.set_ddtp(DdtpMode.OFF)
    await tb.set_ddtp(DdtpMode.LVL1)
    req = request(did=4, l=1, prgi=2)
    await expect_outcome(tb, [req], [model(req, tc=invalid)], pqt=2)


@cocotb.test()
async def register_garbage(dut):
    """Garbage in every register leaves a defined state: reserved bits read 0,
    unsupported ddtp modes are ignored, LOG2SZ-1 clamps to 15, read-only
    indices ignore writes, and a misaligned PQ base is used as PPN<<12 | i*16."""
    tb = TB(dut)
    rng = random.Random(bench_seed())
    await tb.reset()
    for reg in REGISTERS:
        if reg.name in ("pqcsr", "fqcsr", "cqcsr"):
            continue                                  # enables are set deliberately below
        for _ in range(3):
            await tb.write_word(reg.offset, rng.randrange(1 << 32))
            if reg.size == 8:
                await tb.write_word(reg.offset + 4, rng.randrange(1 << 32))
    for mode in (3, 4, 0xF):
        await tb.write_reg("ddtp", iommu_mode=mode, ppn=0x1234)
    # Reads: no reserved bit set anywhere.
    for reg in REGISTERS:
        value = await tb.read_reg(reg.name)
        defined = sum(f.mask for f in reg.fields)
        assert value & ~defined == 0, f"{reg.name} reads reserved bits: {value:#x}"
    assert await tb.read_field("ddtp", "iommu_mode") in (0, 1, 2)
    await tb.write_reg("pqb", log2sz_1=31, ppn=Layout.PQ_PPN)
    assert await tb.read_field("pqb", "log2sz_1") == 15
    await tb.write_word(REG["pqt"].offset, 0x1234)
    assert await tb.read_reg("pqt") == 0
    # Now a well-defined set-up on a misaligned base: records at PPN<<12 | i*16.
    await tb.write_reg("ddtp", iommu_mode=DdtpMode.OFF)
    tb.write_dc(1, tb.good_tc())
    await tb.set_ddtp(DdtpMode.LVL1)
    await tb.enable_fq()
    await tb.enable_pq(log2sz_1=3, ppn=Layout.PQ_PPN + 1)       # 16 × 16 B, not 256 B-aligned
    reqs = [request(did=1, prgi=k, addr=k, l=0) for k in range(3)]
    await send_all(tb, reqs)
    await tb.wait_field("pqt", "index", 3)
    for k, r in enumerate(reqs):
        assert tb.pq_record(k, ppn=Layout.PQ_PPN + 1) == pq_record(r)
    # Garbage written to pqcsr: reserved bits ignored, W1C of clear bits harmless.
    await tb.write_word(REG["pqcsr"].offset, 0xFFFC_FCFD)       # pqen kept 1
    assert await tb.read_field("pqcsr", "pqen") == 1
    req = await tb.device.page_request(did=1, prgi=9, l=0)
    await tb.wait_field("pqt", "index", 4)
    assert tb.pq_record(3, ppn=Layout.PQ_PPN + 1) == pq_record(req)


async def _run_commands(tb, commands, *, log2sz_1=3):
    """Enable the CQ (if off), append ``commands`` (ints of 128 bits) at cqt and
    wait until cqh has moved past all of them."""
    if not await tb.read_field("cqcsr", "cqon"):
        await tb.write_reg("cqb", log2sz_1=log2sz_1, ppn=Layout.CQ_PPN)
        await tb.write_reg("cqcsr", cqen=1)
        await tb.wait_field("cqcsr", "cqon", 1)
    size = 1 << (log2sz_1 + 1)
    tail = await tb.read_reg("cqt")
    for cmd in commands:
        tb.ram.write((Layout.CQ_PPN << PAGE_SHIFT) + tail * COMMAND_BYTES, cmd.to_bytes(COMMAND_BYTES, "little"))
        tail = (tail + 1) % size
    await tb.write_reg("cqt", index=tail)
    return tail


def _inval_ddt(did=None):
    return codec(InvalDdtCmd).pack(opcode=Opcode.IODIR, func3=FUNC3_INVAL_DDT,
                                   dv=int(did is not None), did=did or 0)


def _iofence(opcode=Opcode.IOFENCE_C):
    return codec(IofenceCmd).pack(opcode=opcode, func3=FUNC3_IOFENCE_C)


@cocotb.test()
async def command_queue_invalidation(dut):
    """IODIR.INVAL_DDT through the command queue reaches the context cache:
    after it (and a fence) a changed context is read again; DV=1 for another
    device keeps this one cached."""
    tb = TB(dut)
    await tb.setup(dids=(6, 7))
    await send_all(tb, [request(did=6, l=0), request(did=7, l=0)])
    await tb.wait_field("pqt", "index", 2)
    invalid = tb.write_dc(6, _TC.pack(v=0))
    tb.write_dc(7, _TC.pack(v=0))
    tail = await _run_commands(tb, [_inval_ddt(did=7), _iofence()])
    await tb.wait_field("cqh", "index", tail)
    await send_all(tb, [request(did=6, l=0, prgi=1)])            # still cached
    await tb.wait_field("pqt", "index", 3)
    tail = await _run_commands(tb, [_inval_ddt(), _iofence()])   # DV=0: all
    await tb.wait_field("cqh", "index", tail)
    req = request(did=6, l=1, prgi=2)
    await expect_outcome(tb, [req], [model(req, tc=invalid)], pqt=3)


@cocotb.test()
async def iofence_pd_waits_for_retirement(dut):
    """IOFENCE.PD completes only once every page request accepted before it has
    retired: here an auto-response held back by prg_resp (pr_accepted /
    pr_retired of the page-request path)."""
    tb = TB(dut)
    await tb.setup(dids=(1,), pq_log2sz_1=0)                     # 2 entries
    await send_all(tb, [request(did=1, l=0)])                    # fills the PQ
    await tb.wait_field("pqt", "index", 1)
    tb.prg.hold()
    req = request(did=1, l=1, prgi=0x42)                         # full: Success, held
    await send_all(tb, [req])
    await tb.cycles(20)
    tail = await _run_commands(tb, [_iofence(Opcode.IOFENCE_PD)])
    await tb.cycles(200)
    assert await tb.read_reg("cqh") == tail - 1, "IOFENCE.PD completed before the request retired"
    tb.prg.release()
    await tb.prg.wait_count(1)
    assert tb.prg.responses() == [model(req, tc=tb.good_tc(), full=True).response]
    await tb.wait_field("cqh", "index", tail)


# --- randomized comparison against the reference model ----------------------------------

class _PqState:
    """Software-visible PQ/FQ state the bench keeps while the hardware runs a phase."""

    def __init__(self, size, fq_size):
        self.size, self.fq_size = size, fq_size
        self.head = self.tail = 0
        self.mf = self.of = False
        self.fq_head = self.fq_tail = 0

    def full(self):
        return (self.tail + 1) % self.size == self.head


@cocotb.test()
async def random_against_model(dut):
    """Random phases of requests (random contexts, ddtp modes, PASIDs, L, Stop
    Markers, a full queue, store faults, back-pressure) compared request by
    request with sw_model.disposition; between phases software consumes the
    queues and clears pqof/pqmf."""
    seed = bench_seed()
    rng = random.Random(seed)
    dut._log.info("random_against_model seed=%d (replay with --seed %d)", seed, seed)
    tb = TB(dut)
    await tb.reset()
    pq_log2, fq_log2 = rng.choice((1, 2, 3)), 7
    state = _PqState(1 << (pq_log2 + 1), 1 << (fq_log2 + 1))
    await tb.enable_fq(log2sz_1=fq_log2)
    await tb.enable_pq(log2sz_1=pq_log2)
    tb.memory_backpressure(rng, rng.choice((0.0, 0.2, 0.5)))
    tb.prg.set_backpressure((rng, rng.choice((0.0, 0.3, 0.7))))
    dids = list(range(8)) * 3 + [0x80, 0x10005]
    good = [dict(v=1, en_ats=1, en_pri=1), dict(v=1, en_ats=1, en_pri=1, prpr=1),
            dict(v=1, en_ats=1, en_pri=1, dtf=1)]
    choices = good * 4 + [dict(v=0), dict(v=1, en_ats=1), dict(v=1, en_ats=1, en_pri=1, t2gpa=1),
                          dict(v=1, dtf=1)]
    mode = None
    tcs = {}
    want_resp = []
    rows = Counter()
    n_phases = 400 if os.environ.get("PRIFENCE_SOAK") else 40
    for phase in range(n_phases):
        # New contexts (and a cache flush) or a new ddtp mode, now and then.
        if mode is None or rng.random() < 0.25:
            mode = rng.choice((DdtpMode.LVL1,) * 6 + (DdtpMode.OFF, DdtpMode.BARE))
            for did in range(8):
                tcs[did] = tb.write_dc(did, _TC.pack(**rng.choice(choices)))
            await tb.set_ddtp(DdtpMode.OFF)
            await tb.set_ddtp(mode)
        load_fault = set()
        if rng.random() < 0.15:
            did = rng.randrange(8)
            addr = (Layout.DDT_PPN << PAGE_SHIFT) + did * 32
            tb.inject_errors(addr, addr + 8, writes=False)
            load_fault.add(did)
            # A cached context never faults: flush so the fault is seen.
            await tb.set_ddtp(DdtpMode.OFF)
            await tb.set_ddtp(mode)
        free = (state.head - state.tail - 1) % state.size
        store_fault = not state.mf and not state.of and free >= 3 and rng.random() < 0.3
        if store_fault:
            # Fault a slot the phase will reach, and keep the phase short of full.
            k = rng.randrange(1, free - 1)
            slot = (state.tail + k) % state.size
            addr = (Layout.PQ_PPN << PAGE_SHIFT) + slot * PQ_RECORD_BYTES
            tb.inject_errors(addr, addr + PQ_RECORD_BYTES, reads=False)
            n_req = rng.randrange(2, free)
        else:
            n_req = rng.randrange(1, 3 * state.size)
        reqs = []
        for _ in range(n_req):
            pv = rng.randrange(2)
            stop = pv and rng.random() < 0.1
            reqs.append(request(did=rng.choice(dids), pv=pv, pid=rng.randrange(1 << 20),
                                priv=rng.randrange(2), exec=rng.randrange(2),
                                r=0 if stop else rng.randrange(2), w=0 if stop else rng.randrange(2),
                                l=1 if stop else rng.randrange(2), prgi=rng.randrange(512),
                                addr=rng.randrange(1 << 52)))
        want_rec, want_fq = [], []
        for req in reqs:
            did = req["did"]
            lf = mode == DdtpMode.LVL1 and did < 8 and did in load_fault
            d = decide(req, ddtp_mode=int(mode), dc_tc=None if lf or did >= 8 else tcs[did],
                       dc_load_fault=lf, pq_on=True, pq_mf=state.mf, pq_of=state.of,
                       pq_full=state.full())
            response = d.response
            rows[d.row] += 1
            if d.write_record:
                addr = (Layout.PQ_PPN << PAGE_SHIFT) + state.tail * PQ_RECORD_BYTES
                if any(lo <= addr < hi for lo, hi in tb._error_ranges["write"]):
                    state.mf = True
                    rows["pq_store_fault"] += 1
                    response = store_fault_response(req, dc_tc=tcs[did])
                else:
                    want_rec.append(pq_record(req))
                    state.tail = (state.tail + 1) % state.size
            if d.set_pqof:
                state.of = True
            if response is not None:
                want_resp.append(response)
            if d.fq_cause is not None:
                want_fq.append(fq_record(req, d.fq_cause))
        dut._log.info("phase %d: ddtp %s, %d requests, head %d tail %d, pqmf %d pqof %d, faults %s",
                      phase, mode.name, n_req, state.head, state.tail, state.mf, state.of,
                      tb._error_ranges)
        await send_all(tb, reqs)
        try:
            await tb.prg.wait_count(len(want_resp), timeout=30000)
            await tb.wait_field("pqt", "index", state.tail, timeout=30000)
            await tb.wait_field("fqt", "index", (state.fq_tail + len(want_fq)) % state.fq_size,
                                timeout=30000)
        except WaitTimeout as exc:
            raise WaitTimeout(f"phase {phase} (seed {seed}): {exc}") from None
        got = tb.prg.responses()
        assert got == want_resp, f"phase {phase} (seed {seed}): responses differ"
        records = await tb.consume_pq()
        if records != want_rec:
            pq_lo, pq_hi = Layout.PQ_PPN << PAGE_SHIFT, (Layout.PQ_PPN << PAGE_SHIFT) + state.size * 16
            dut._log.error("PQ writes: %s", [(c, (a - pq_lo) // 16, f) for c, a, f in tb.write_log[-40:]
                                            if pq_lo <= a < pq_hi])
        assert records == want_rec, f"phase {phase} (seed {seed}): PQ records differ"
        state.head = state.tail
        for k, rec in enumerate(want_fq):
            assert tb.fq_record((state.fq_tail + k) % state.fq_size) == rec, \
                f"phase {phase} (seed {seed}): FQ record {k} differs"
        state.fq_tail = (state.fq_tail + len(want_fq)) % state.fq_size
        await tb.write_reg("fqh", index=state.fq_tail)
        csr = await tb.read_reg("pqcsr")
        assert _pqcsr(csr, "pqof") == state.of and _pqcsr(csr, "pqmf") == state.mf, \
            f"phase {phase} (seed {seed}): pqcsr {csr:#x}"
        tb.clear_errors()
        if state.mf or state.of:
            await tb.write_reg("pqcsr", pqen=1, pie=1, pqmf=int(state.mf), pqof=int(state.of))
            state.mf = state.of = False
    dut._log.info("random_against_model: %d responses compared; rows %s", len(want_resp), dict(rows))

"""cocotb benches of the command queue at the top level (DESIGN.md §2 cqcsr rules, §3 commands).

Run through pytest (``cocotb_tests/test_command_queue.py``); each ``@cocotb.test``
here is one pytest item.  Responses are checked against the transaction-level
model's decoding of the command (:func:`cocotb_tests.cq_tb.prgr_response`, from
:func:`sw_model.tlm.decode_command`), page-request dispositions against
:mod:`sw_model.disposition`, and the randomized bench against
:class:`~cocotb_tests.cq_tb.CommandModel` (:mod:`sw_model.tlm`).  Ordering and
latency are read from :class:`~cocotb_tests.cq_tb.PortProbe` time stamps, in
clock cycles.
"""

import json
import os
import random

import cocotb

from prifence.formats import (
    DC_BYTES, DDT_INDEX_BITS, PAGE_SHIFT, REG, CommandHeader, DdtpMode, DeviceContextTc, Opcode, ResponseCode, codec,
    reserved_field_names,
)
from rtl.command_queue import FETCH_TO_EXECUTE, RESPONSE_BUFFER
from sw_model.disposition import decide, fq_record, pq_record
from sw_model.tlm import decode_command

from .cq_tb import (
    FENCE, INVAL, PRGR, CommandModel, CommandQueueDriver, PortProbe, inval_ddt, iofence, prgr,
    prgr_response,
)
from .tb import TB, Layout, WaitTimeout, bench_seed, cycles_now, request

_TC = codec(DeviceContextTc)
_HDR = codec(CommandHeader)
SCRATCH = Layout.SCRATCH
#: Fence stores go to [SCRATCH, SCRATCH + SCRATCH_BYTES).
SCRATCH_BYTES = Layout.RAM_SIZE - Layout.SCRATCH
#: ATS.PRGR responses of the benches name devices from here up, page requests below,
#: so the two sources sharing ``prg_resp`` can be told apart.
PRGR_DID = 0x100


def numbered(n, code=ResponseCode.SUCCESS):
    """A distinct ATS.PRGR per ``n``."""
    return prgr(did=PRGR_DID + n % 0x3F00, prgi=n % 512, code=code)


def is_prgr_response(resp):
    return resp["did"] >= PRGR_DID


async def start(dut, *, log2sz_1=4, dids=(1,), cie=1, tc=None):
    """Reset; 1LVL directory with good contexts for ``dids``; PQ, FQ and CQ on."""
    tb = TB(dut)
    await tb.setup(dids=dids, tc=tc, pq_log2sz_1=7)
    cq = CommandQueueDriver(tb, log2sz_1=log2sz_1)
    await cq.enable(cie=cie)
    probe = PortProbe(tb)
    return tb, cq, probe


async def ipsr_cip(tb):
    return await tb.read_field("ipsr", "cip")


def acceptance_cycles(tb, predicate=is_prgr_response):
    return [cycle for cycle, resp in tb.prg.received if predicate(resp)]


# --- each command ---------------------------------------------------------------------------

@cocotb.test()
async def prgr_fields(dut):
    """ATS.PRGR: DID from RID and (DSV=1) the segment, PID only with PV=1, PRGI
    and the code as written (a reserved code is forwarded), ignored dw1 bits
    ignored; cqh moves past each; no status bit is set."""
    tb, cq, probe = await start(dut)
    words = [
        prgr(did=0x0101, prgi=0, code=ResponseCode.SUCCESS),
        prgr(did=0x12_3456, prgi=0x1FF, code=ResponseCode.INVALID_REQUEST),     # DSV=1
        prgr(did=0x12_3456, prgi=3, dsv=0),                                     # segment dropped
        prgr(did=0x0200, prgi=4, pv=1, pid=0xABCDE, code=ResponseCode.RESPONSE_FAILURE),
        prgr(did=0x0201, prgi=5, pv=0, pid=0xABCDE),                            # PID not sent
        prgr(did=0x0202, prgi=6, code=0x5),                                     # reserved code
        prgr(did=0x0203, prgi=7, ignored=(1 << 64) - 1),
    ]
    want = [prgr_response(w) for w in words]
    assert want[2]["did"] == 0x3456 and want[4]["pid"] == 0 and want[5]["code"] == 0x5
    await cq.submit(*words)
    got = await tb.prg.wait_count(len(words))
    assert got == want, (got, want)
    await cq.wait_head(cq.tail)
    csr = await cq.csr()
    assert not (csr["cqmf"] or csr["cmd_ill"] or csr["fence_w_ip"] or csr["cmd_to"]), csr
    assert not probe.stores


@cocotb.test()
async def iofence_c_store_and_interrupt(dut):
    """IOFENCE.C: AV=1 stores DATA (4 bytes, nothing around it) at ADDR for each
    4-byte lane; AV=0 stores nothing; WSI=1 sets fence_w_ip and, with cie=1, cip
    and irq_cq; cip cleared while fence_w_ip is still set is set again at once;
    cie=0 leaves cip alone; PR/PW are accepted; IOFENCE.PD with nothing to
    drain completes the same way."""
    tb, cq, probe = await start(dut)
    tb.ram.write(SCRATCH, bytes([0xEE]) * 64)
    for lane in range(4):
        addr = SCRATCH + 16 + 4 * lane
        await cq.fence(av=1, data=0x1234_5600 + lane, addr=addr)
        assert cq.read_u32(addr) == 0x1234_5600 + lane
    assert tb.ram.read(SCRATCH, 16) == bytes([0xEE]) * 16
    assert tb.ram.read(SCRATCH + 32, 32) == bytes([0xEE]) * 32
    assert [a for _, a in probe.stores] == [SCRATCH + 16 + 4 * k for k in range(4)]
    assert (await cq.csr())["fence_w_ip"] == 0 and not int(dut.irq_cq.value)

    stores = len(probe.stores)
    await cq.submit(iofence(av=0, wsi=0, pr=1, pw=1, data=0xFFFF, addr=SCRATCH))
    await cq.wait_head(cq.tail)
    assert len(probe.stores) == stores and cq.read_u32(SCRATCH) == 0xEEEE_EEEE

    await cq.fence(wsi=1)
    assert (await cq.csr())["fence_w_ip"] == 1
    assert await ipsr_cip(tb) == 1 and int(dut.irq_cq.value) == 1
    await tb.write_reg("ipsr", cip=1)
    assert await ipsr_cip(tb) == 1, "cip is set again at once while fence_w_ip is set"
    await cq.clear("fence_w_ip")
    assert (await cq.csr())["fence_w_ip"] == 0
    await tb.write_reg("ipsr", cip=1)
    assert await ipsr_cip(tb) == 0 and not int(dut.irq_cq.value)

    # IOFENCE.PD, nothing to drain: completes; WSI=1 with cie=0 leaves cip alone.
    await tb.write_reg("cqcsr", cqen=1, cie=0)
    cq.cie = 0
    await cq.fence(pd=True, av=1, wsi=1, data=0xD00D, addr=SCRATCH + 8)
    assert cq.read_u32(SCRATCH + 8) == 0xD00D
    assert (await cq.csr())["fence_w_ip"] == 1 and await ipsr_cip(tb) == 0
    await tb.write_reg("cqcsr", cqen=1, cie=1)
    cq.cie = 1
    assert await ipsr_cip(tb) == 0, "turning cie on set cip by itself"


@cocotb.test()
async def inval_ddt_orders_context_change(dut):
    """A device context changed in memory takes effect only after IODIR.INVAL_DDT
    covering it: before, and after an invalidation of another device, the cached
    context decides; after INVAL_DDT (DV=1 of that device, or DV=0 with a wide
    DID ignored) and a fence, the context as it is in memory decides."""
    tb, cq, probe = await start(dut, dids=(1, 2))
    good = tb.good_tc()
    pqt = 0

    async def expect(req, tc):
        nonlocal pqt
        d = decide(req, ddtp_mode=int(DdtpMode.LVL1), dc_tc=tc, dc_load_fault=False, pq_on=True,
                   pq_mf=False, pq_of=False, pq_full=False)
        before = len(tb.prg.received)
        fqt = await tb.read_reg("fqt")
        await tb.device.page_request(**req)
        if d.write_record:
            await tb.wait_field("pqt", "index", pqt + 1)
            assert tb.pq_record(pqt) == pq_record(req)
            pqt += 1
        if d.response is not None:
            await tb.prg.wait_count(before + 1)
            assert tb.prg.responses()[before] == d.response
        if d.fq_cause is not None:
            await tb.wait_field("fqt", "index", fqt + 1)
            assert tb.fq_record(fqt) == fq_record(req, d.fq_cause)
        await tb.cycles(20)
        assert await tb.read_reg("pqt") == pqt and len(tb.prg.received) == before + (
            d.response is not None)
        return d

    # Cache both contexts.
    assert (await expect(request(did=1, prgi=1), good)).write_record
    assert (await expect(request(did=2, prgi=1), good)).write_record
    # Device 1 loses PRI in memory: the cached context still decides.
    no_pri = tb.write_dc(1, _TC.pack(v=1, en_ats=1))
    assert (await expect(request(did=1, prgi=2), good)).write_record
    # Invalidating another device changes nothing for device 1.
    await cq.submit(inval_ddt(dv=1, did=2))
    await cq.fence()
    assert (await expect(request(did=1, prgi=3), good)).write_record
    assert (await expect(request(did=2, prgi=9), good)).write_record     # cached again
    # INVAL_DDT of device 1 then a fence: the new context decides.
    await cq.submit(inval_ddt(dv=1, did=1))
    await cq.fence()
    d = await expect(request(did=1, prgi=4), no_pri)
    assert d.response["code"] == ResponseCode.INVALID_REQUEST and d.fq_cause is not None
    # Device 2 misconfigured in memory; INVAL_DDT of all (DV=0, its DID ignored).
    bad = tb.write_dc(2, _TC.pack(v=1, en_ats=1, en_pri=1, t2gpa=1))
    assert (await expect(request(did=2, prgi=5), good)).write_record
    await cq.submit(inval_ddt(dv=0, did=(1 << 24) - 1))
    await cq.fence()
    d = await expect(request(did=2, prgi=6), bad)
    assert d.response["code"] == ResponseCode.RESPONSE_FAILURE
    # Restored, invalidated: both devices queue again.
    tb.write_dc(1, good)
    tb.write_dc(2, good)
    await cq.submit(inval_ddt(dv=1, did=1), inval_ddt(dv=1, did=2))
    await cq.fence()
    assert (await expect(request(did=1, prgi=7), good)).write_record
    assert (await expect(request(did=2, prgi=8), good)).write_record
    assert not ((await cq.csr())["cmd_ill"])


@cocotb.test()
async def inval_ddt_drops_in_flight_context_read(dut):
    """A context read in flight when IODIR.INVAL_DDT covering it executes does
    not fill the cache: the read is held in the memory (returning the context
    as it was) while the context changes in memory and the prefetched
    INVAL_DDT executes; after the fence, a request of that device is decided
    by the context in memory, not by the stale read."""
    from cocotb.triggers import Event
    tb, cq, probe = await start(dut, dids=(1,))
    dc1 = (Layout.DDT_PPN << PAGE_SHIFT) + 1 * DC_BYTES
    gate, gated = Event(), []
    read_before = tb.ram.read_if._read

    async def held_read(address, length):
        data = await read_before(address, length)         # the context as it was
        if address < dc1 + DC_BYTES and dc1 < address + length and not gate.is_set():
            gated.append(cycles_now())
            await gate.wait()
        return data

    tb.ram.read_if._read = held_read
    # INVAL_DDT is prefetched behind more ATS.PRGRs than the response buffer
    # holds, so while prg_resp is held the last of them cannot execute and
    # cqh stays before the INVAL_DDT until the read is in flight.
    tb.prg.hold()
    prgrs = RESPONSE_BUFFER + 1
    fetched = len(probe.fetch_last)
    *_, inval_index, fence_index = await cq.submit(
        *(numbered(k) for k in range(prgrs)), inval_ddt(dv=1, did=1),
        iofence(av=1, data=1, addr=SCRATCH))
    await tb.wait_until(lambda: len(probe.fetch_last) >= fetched + prgrs + 2, what="the prefetch")
    await tb.device.page_request(did=1, prgi=1, l=1)
    await tb.wait_until(lambda: gated, what="the context read in flight")
    no_pri = tb.write_dc(1, _TC.pack(v=1, en_ats=1))
    assert await cq.head() < inval_index
    tb.prg.release()
    await tb.wait_until(lambda: len(tb.prg.received) >= prgrs, what="the ATS.PRGR responses")
    await tb.cycles(30)
    assert await cq.head() > inval_index, "INVAL_DDT did not execute while the read was held"
    assert len(gated) == 1
    gate.set()
    await cq.wait_head(fence_index + 1)
    assert cq.read_u32(SCRATCH) == 1
    # The request whose read was held keeps what it read (a record) or, as the
    # design may re-read, what is in memory; either way it is disposed of.
    await tb.wait_until(lambda: probe.pq_b or len(tb.prg.received) > prgrs,
                        what="the held request disposed of")
    if probe.pq_b:
        await tb.wait_field("pqt", "index", 1)
    dut._log.info("held request: %s", "recorded" if probe.pq_b else tb.prg.responses()[prgrs:])
    before, pqt = len(tb.prg.received), await tb.read_reg("pqt")
    fqt = await tb.read_reg("fqt")
    req = request(did=1, prgi=2, l=1)
    d = decide(req, ddtp_mode=int(DdtpMode.LVL1), dc_tc=no_pri, dc_load_fault=False, pq_on=True,
               pq_mf=False, pq_of=False, pq_full=False)
    await tb.device.page_request(**req)
    await tb.prg.wait_count(before + 1)
    assert tb.prg.responses()[before:] == [d.response], "the stale context read filled the cache"
    await tb.wait_field("fqt", "index", fqt + 1)
    assert tb.fq_record(fqt) == fq_record(req, d.fq_cause)
    assert await tb.read_reg("pqt") == pqt


# --- ordering and fences under back-pressure ----------------------------------------------------

@cocotb.test()
async def fence_waits_for_held_responses(dut):
    """With prg_resp held for 300 cycles, a fence after ATS.PRGRs neither stores,
    nor sets fence_w_ip, nor lets cqh past it; released, the responses leave in
    command order, the AV store follows the last acceptance within 4 cycles and
    cqh passes the fence (AV=0: within 4 cycles of that acceptance)."""
    tb, cq, probe = await start(dut)
    for av in (1, 0):
        tb.prg.hold()
        start_count = len(tb.prg.received)
        words = [numbered(10 * av + k) for k in range(3)]
        first, *_ = await cq.submit(*words, iofence(av=av, wsi=1, data=0xA5A5_0000 + av,
                                                     addr=SCRATCH + 4 * av))
        fence_index = first + 3
        await tb.cycles(300)
        assert not probe.stores, "the AV store preceded an earlier response's acceptance"
        assert (await cq.csr())["fence_w_ip"] == 0 and not int(dut.irq_cq.value)
        assert await cq.head() <= fence_index
        tb.prg.release()
        await tb.prg.wait_count(start_count + 3)
        await cq.wait_head(fence_index + 1)
        got = tb.prg.responses()[start_count:]
        assert got == [prgr_response(w) for w in words], got
        last = acceptance_cycles(tb)[-1]
        passed = probe.head_cycle(fence_index + 1, after=last - 1)
        assert passed is not None and passed > last
        if av:
            (store_cycle, store_addr), = probe.stores
            assert store_addr == SCRATCH + 4
            assert last < store_cycle <= last + 4, (last, store_cycle)
            assert passed > probe.store_b[-1][0]
            assert cq.read_u32(SCRATCH + 4) == 0xA5A5_0001
        else:
            assert passed - last <= 4, (last, passed)
        assert (await cq.csr())["fence_w_ip"] == 1 and int(dut.irq_cq.value) == 1
        await cq.clear("fence_w_ip")
        await tb.write_reg("ipsr", cip=1)
        probe.stores.clear()


@cocotb.test()
async def order_under_random_backpressure(dut):
    """ATS.PRGRs and fences (AV=1, distinct addresses) interleaved, with random
    prg_resp and memory back-pressure and auto-responses competing for
    prg_resp: ATS.PRGR responses leave in command order, auto-responses in
    request order, and no fence's AV store precedes the acceptance of any
    earlier ATS.PRGR response."""
    seed = bench_seed()
    rng = random.Random(seed)
    dut._log.info("order_under_random_backpressure seed=%d (replay with --seed %d)", seed, seed)
    tb, cq, probe = await start(dut, log2sz_1=3, dids=(1,))
    tb.write_dc(2, _TC.pack(v=1, en_ats=1))                    # no PRI: Invalid Request
    tb.prg.set_backpressure((rng, rng.choice((0.3, 0.6, 0.9))))
    tb.memory_backpressure(rng, rng.choice((0.0, 0.2)))
    words, fences = [], {}                                      # fence serial -> store address
    for serial in range(60):
        if rng.random() < 0.2:
            addr = SCRATCH + 4 * serial
            fences[serial] = addr
            words.append(iofence(pd=rng.random() < 0.3, av=1, data=serial, addr=addr))
        else:
            words.append(numbered(serial))
    reqs = [request(did=2, prgi=k, l=1) for k in range(40)]
    want_auto = [decide(r, ddtp_mode=int(DdtpMode.LVL1), dc_tc=_TC.pack(v=1, en_ats=1),
                        dc_load_fault=False, pq_on=True, pq_mf=False, pq_of=False,
                        pq_full=False).response for r in reqs]
    for req in reqs:
        tb.device.queue.append(req)
    await cq.submit_all(words)
    n_prgr = len(words) - len(fences)
    await tb.prg.wait_count(n_prgr + len(reqs), timeout=40000)
    await cq.wait_head(cq.tail, timeout=20000)
    got = tb.prg.responses()
    assert [r for r in got if is_prgr_response(r)] == [
        prgr_response(w) for k, w in enumerate(words) if k not in fences]
    assert [r for r in got if not is_prgr_response(r)] == want_auto
    accepted = acceptance_cycles(tb)
    store_at = {addr: cycle for cycle, addr in probe.stores}
    assert len(store_at) == len(fences)
    for serial, addr in fences.items():
        earlier = sum(1 for k in range(serial) if k not in fences)
        if earlier:
            assert store_at[addr] > accepted[earlier - 1], \
                f"fence {serial}: store at {store_at[addr]}, response {earlier - 1} " \
                f"accepted at {accepted[earlier - 1]} (seed {seed})"
        if earlier < n_prgr:
            # Later ATS.PRGRs execute only once the fence has completed.
            assert accepted[earlier] > store_at[addr], f"fence {serial} (seed {seed})"
        assert cq.read_u32(addr) == serial


# --- errors and recovery --------------------------------------------------------------------------

def _illegal_commands():
    """Every way a command is cmd_ill (DESIGN §3), by name."""
    cases = {
        "opcode 0": 0,
        "IOTINVAL (opcode 1)": 1,
        "ATS.INVAL (ATS func3 0)": PRGR.pack(opcode=Opcode.ATS, func3=0, prgi=1),
        "IODIR.INVAL_PDT (IODIR func3 1)": INVAL.pack(opcode=Opcode.IODIR, func3=1, dv=1),
        "IOFENCE func3 1": FENCE.pack(opcode=Opcode.IOFENCE_C, func3=1),
        "IOFENCE.PD func3 2": FENCE.pack(opcode=Opcode.IOFENCE_PD, func3=2),
        "ATS func3 7": PRGR.pack(opcode=Opcode.ATS, func3=7),
        "custom opcode 65": _HDR.pack(opcode=65),
        "opcode 127": _HDR.pack(opcode=127),
        "INVAL_DDT with a PID": inval_ddt(dv=1, did=1, pid=1),
        "INVAL_DDT DV=0 with a PID": inval_ddt(dv=0, pid=1 << 19),
        "INVAL_DDT DV=1 DID wider than 7 bits": inval_ddt(dv=1, did=1 << DDT_INDEX_BITS),
        "IOFENCE store address beyond 56 bits": iofence(av=1, addr=1 << 56),
        "IOFENCE.PD store address beyond 56 bits, AV=0": iofence(pd=True, addr=1 << 60),
    }
    for name, c, base in (("IOFENCE.C", FENCE, iofence()), ("IOFENCE.PD", FENCE, iofence(pd=True)),
                          ("INVAL_DDT", INVAL, inval_ddt(dv=0)),
                          ("ATS.PRGR", PRGR, numbered(0))):
        for field in reserved_field_names(c.layout):
            off, width = c.fields[field]
            cases[f"{name} reserved {field} bit {off}"] = base | 1 << off
            if width > 1:
                cases[f"{name} reserved {field} bit {off + width - 1}"] = base | 1 << (off + width - 1)
    return cases


ILLEGAL = _illegal_commands()


@cocotb.test()
async def illegal_commands_stop_until_cleared(dut):
    """For each reserved field and unknown opcode: cmd_ill and cip set, cqh on the
    command, nothing after it executes or is fetched; repaired in memory and
    cmd_ill cleared, the queue resumes with the repaired command."""
    tb, cq, probe = await start(dut, log2sz_1=3)
    serial = 0
    for name, bad in ILLEGAL.items():
        assert decode_command(bad)[0] == "illegal", name
        before = len(tb.prg.received)
        ok, fixed, after = numbered(serial), numbered(serial + 1), numbered(serial + 2)
        serial += 3
        first, bad_index, _ = await cq.submit(ok, bad, after)
        await cq.wait_status("cmd_ill")
        assert await cq.head() == bad_index, name
        assert await ipsr_cip(tb) == 1 and int(dut.irq_cq.value) == 1, name
        fetches = len(probe.fetch_ar)
        await tb.cycles(50)
        assert tb.prg.responses()[before:] == [prgr_response(ok)], name
        assert len(probe.fetch_ar) == fetches, f"{name}: fetched while cmd_ill is set"
        assert await cq.head() == bad_index and (await cq.csr())["cqmf"] == 0
        cq.write_slot(bad_index, fixed)
        await cq.clear("cmd_ill")
        await cq.wait_head(cq.tail)
        await tb.prg.wait_count(before + 3)
        assert tb.prg.responses()[before:] == [prgr_response(w) for w in (ok, fixed, after)], name
        await tb.write_reg("ipsr", cip=1)
        assert await ipsr_cip(tb) == 0 and (await cq.csr())["cmd_ill"] == 0, name


@cocotb.test()
async def fetch_fault_reported_when_reached(dut):
    """A command whose fetch faults (SLVERR): the commands before it execute (a
    fence before it is waited for, the fault stays unreported meanwhile), then
    cqmf and cip are set with cqh on it and nothing later executes; with the
    memory repaired and cqmf cleared, the command is fetched again and runs."""
    tb, cq, probe = await start(dut, log2sz_1=3)
    tb.prg.hold()
    words = [numbered(0), numbered(1), iofence(av=1, data=7, addr=SCRATCH), numbered(3),
             numbered(4)]
    bad = cq.slot_addr(cq.tail + 3)
    tb.inject_errors(bad, bad + 16, writes=False)
    first, *_ = await cq.submit(*words)
    await tb.cycles(200)
    assert any(addr == bad for _, addr in probe.fetch_ar), "the faulting slot was not prefetched"
    assert (await cq.csr())["cqmf"] == 0, "a prefetch fault was reported before execution"
    tb.prg.release()
    await cq.wait_status("cqmf")
    assert await cq.head() == first + 3
    assert await ipsr_cip(tb) == 1
    await tb.cycles(50)
    assert tb.prg.responses() == [prgr_response(w) for w in words[:2]]
    assert cq.read_u32(SCRATCH) == 7
    tb.clear_errors()
    await cq.clear("cqmf")
    await cq.wait_head(cq.tail)
    await tb.prg.wait_count(4)
    assert tb.prg.responses() == [prgr_response(w) for w in words[:2] + words[3:]]
    assert (await cq.csr())["cqmf"] == 0


@cocotb.test()
async def fetch_fault_either_half(dut):
    """A fault on either 8-byte half of a command is cqmf with cqh on it, and
    the command runs once repaired and cleared."""
    tb, cq, probe = await start(dut, log2sz_1=3)
    for half in (0, 8):
        addr = cq.slot_addr(cq.tail) + half
        tb.inject_errors(addr, addr + 8, writes=False)
        (index,) = await cq.submit(numbered(half))
        await cq.wait_status("cqmf")
        assert await cq.head() == index
        tb.clear_errors()
        await cq.clear("cqmf")
        await cq.wait_head(cq.tail)
    assert tb.prg.responses() == [prgr_response(numbered(0)), prgr_response(numbered(8))]


@cocotb.test()
async def av_store_fault_then_retry(dut):
    """A faulting AV store: cqmf and cip set, cqh stays on the fence, no
    fence_w_ip; repaired and cleared, the fence executes again and completes."""
    tb, cq, probe = await start(dut)
    addr = SCRATCH + 0x40
    tb.inject_errors(addr, addr + 4, reads=False)
    index, _ = await cq.submit(iofence(av=1, wsi=1, data=0x55, addr=addr), numbered(1))
    await cq.wait_status("cqmf")
    await tb.cycles(30)
    csr = await cq.csr()
    assert csr["fence_w_ip"] == 0 and await cq.head() == index
    assert await ipsr_cip(tb) == 1
    assert probe.store_b and probe.store_b[-1][1] != 0
    assert not tb.prg.received, "a command after the faulting fence executed"
    tb.clear_errors()
    await cq.clear("cqmf")
    await cq.wait_head(cq.tail)
    assert cq.read_u32(addr) == 0x55
    assert (await cq.csr())["fence_w_ip"] == 1
    assert tb.prg.responses() == [prgr_response(numbered(1))]


@cocotb.test()
async def cqcsr_rules(dut):
    """cqcsr on the real register file: reset values; cqon and busy while
    disabling with a fetch outstanding; writes ignored while busy; cqb ignored
    while on, accepted when off (zeroing cqt); stop on error with cqh on the
    failing command; enabling zeroes cqh and clears the error bits."""
    tb = TB(dut)
    await tb.setup(dids=(1,))
    probe = PortProbe(tb)
    assert await tb.read_reg("cqcsr") == 0 and await tb.read_reg("cqh") == 0
    cq = CommandQueueDriver(tb, log2sz_1=3)
    await cq.enable()
    csr = await cq.csr()
    assert csr["cqen"] and csr["cqon"] and not csr["busy"] and csr["cie"]
    # cqb is ignored while the queue is on.
    await tb.write_reg("cqb", log2sz_1=5, ppn=Layout.CQ_PPN + 1)
    assert REG["cqb"].decode(await tb.read_reg("cqb"))["log2sz_1"] == 3

    # Run, then stop on an illegal command at slot 5.
    await cq.submit(*[numbered(k) for k in range(5)], 0, numbered(6))
    await cq.wait_status("cmd_ill")
    assert await cq.head() == 5 and len(await tb.prg.wait_count(5)) == 5

    # Disable with a fetch outstanding: cqon stays 1 (busy) until it answers.
    cq.write_slot(5, numbered(5))
    await cq.clear("cmd_ill")
    await cq.wait_head(cq.tail)
    await tb.prg.wait_count(7)
    tb.ram.read_if.r_channel.pause = True
    await cq.submit(numbered(7))
    await tb.wait_until(lambda: len(probe.fetch_ar) and probe.fetch_ar[-1][1] == cq.slot_addr(7),
                        what="the fetch of slot 7")
    await cq.disable(wait=False)
    csr = await cq.csr()
    assert (csr["cqen"], csr["cqon"], csr["busy"]) == (0, 1, 1), csr
    await tb.write_reg("cqcsr", cqen=1, cie=1)                 # ignored: busy
    assert (await cq.csr())["cqen"] == 0
    tb.ram.read_if.r_channel.pause = False
    await tb.wait_field("cqcsr", "cqon", 0)
    assert (await cq.csr())["busy"] == 0
    await tb.cycles(20)
    assert len(tb.prg.received) == 7, "a command fetched while disabling executed"

    # Disable with an AV store in flight: busy until its answer; a W1C write
    # while busy is ignored whole; the store already issued is seen through.
    await cq.enable()
    await cq.fence(wsi=1)
    tb.hold_write_responses(True)
    stores = len(probe.stores)
    await cq.submit(iofence(av=1, data=3, addr=SCRATCH + 0x20))
    await tb.wait_until(lambda: len(probe.stores) > stores, what="the AV store issued")
    await cq.disable(wait=False)
    csr = await cq.csr()
    assert (csr["cqen"], csr["cqon"], csr["busy"], csr["fence_w_ip"]) == (0, 1, 1, 1), csr
    await tb.write_reg("cqcsr", cqen=0, cie=1, fence_w_ip=1)   # ignored: busy
    assert (await cq.csr())["fence_w_ip"] == 1, "a W1C write while busy took effect"
    tb.hold_write_responses(False)
    await tb.wait_field("cqcsr", "cqon", 0)
    assert cq.read_u32(SCRATCH + 0x20) == 3
    await tb.write_reg("cqcsr", cqen=0, cie=1, fence_w_ip=1)
    assert (await cq.csr())["fence_w_ip"] == 0

    # Off: cqb is accepted and zeroes cqt; error bits left by a stop are
    # cleared by enabling, and cqh starts at 0.
    await cq.enable(cie=1)
    await cq.submit(iofence(av=1, addr=SCRATCH, data=1) | 1 << FENCE.fields["_rsvd0"][0])
    await cq.wait_status("cmd_ill")
    assert await cq.head() == 0
    await cq.disable()
    assert (await cq.csr())["cmd_ill"] == 1, "cmd_ill stays set while disabled"
    await tb.write_reg("cqt", index=5)
    await cq.configure()
    assert await tb.read_reg("cqt") == 0, "an accepted cqb write zeroes cqt"
    await cq.enable(configure=False)
    csr = await cq.csr()
    assert (csr["cmd_ill"], csr["cqmf"], csr["cqon"]) == (0, 0, 1) and await cq.head() == 0
    await cq.submit(numbered(20))
    await tb.prg.wait_count(8)
    assert tb.prg.responses()[-1] == prgr_response(numbered(20))


@cocotb.test()
async def disable_abandons_waiting_fence(dut):
    """Disabling the CQ while a fence waits abandons it: IOFENCE.C waiting on a
    held response, and IOFENCE.PD waiting on an unacknowledged PQ record.  No
    AV store, no fence_w_ip, cqh stays on it; the responses already handed to
    the response path (offered on prg_resp, or waiting in the command queue's
    response buffer behind it) are still sent."""
    tb, cq, probe = await start(dut)
    # IOFENCE.C behind a held response.
    tb.prg.hold()
    p0, p1 = numbered(0), numbered(1)
    _, _, fence_index = await cq.submit(p0, p1, iofence(av=1, wsi=1, data=9, addr=SCRATCH))
    await tb.wait_until(lambda: int(dut.prg_resp_valid.value), what="the first response offered")
    await tb.cycles(20)
    await cq.disable()
    tb.prg.release()
    await tb.cycles(100)
    assert RESPONSE_BUFFER == 2, "this bench holds one response offered and one behind it"
    assert tb.prg.responses() == [prgr_response(p0), prgr_response(p1)], \
        "a response handed to the response path was not sent"
    assert not probe.stores and cq.read_u32(SCRATCH) == 0
    csr = await cq.csr()
    assert csr["fence_w_ip"] == 0 and csr["cqon"] == 0
    assert await cq.head() == fence_index, "cqh left the abandoned fence"

    # IOFENCE.PD behind a page request whose record write is not acknowledged.
    await cq.enable()
    tb.hold_write_responses(True)
    req = await tb.device.page_request(did=1, prgi=3, l=0)
    await cq.submit(iofence(pd=True, av=1, wsi=1, data=10, addr=SCRATCH + 4))
    await tb.cycles(100)
    assert not probe.stores, "IOFENCE.PD did not wait for the unretired request"
    await cq.disable()
    assert await cq.head() == 0
    tb.hold_write_responses(False)
    await tb.wait_field("pqt", "index", 1)
    assert tb.pq_record(0) == pq_record(req)
    await tb.cycles(100)
    assert not probe.stores and (await cq.csr())["fence_w_ip"] == 0 and await cq.head() == 0


# --- IOFENCE.PD racing page requests ---------------------------------------------------------------

@cocotb.test()
async def iofence_pd_races_page_requests(dut):
    """IOFENCE.PD against a page request accepted a few cycles before, in, and
    after the cycle the fence executes (no earlier command: FETCH_TO_EXECUTE
    cycles after the last beat of its fetch).  With PQ record acknowledgements held, a request
    accepted before that cycle holds the fence's AV store back; one accepted in
    it or later does not.  Released, every fence completes with its store."""
    tb, cq, probe = await start(dut, log2sz_1=5)
    await tb.device.page_request(did=1, prgi=0, l=0)           # caches the context
    await tb.wait_field("pqt", "index", 1)
    pqt = 1
    seen = {}
    for trial, delay in enumerate(range(0, 10)):
        tb.hold_write_responses(True)
        addr = SCRATCH + 4 * trial
        (index,) = cq.place(iofence(pd=True, av=1, data=trial + 1, addr=addr))
        slot = cq.slot_addr(index)
        fetches = len(probe.fetch_ar)
        await cq.doorbell()
        await tb.cycles(delay)
        req = tb.device.send_nowait(did=1, prgi=trial + 1, l=0)
        await tb.device.wait_idle()
        accepted = tb.device.accepted[-1][0]
        assert tb.device.accepted[-1][1] is req
        await tb.cycles(60)
        assert [a for _, a in probe.fetch_ar[fetches:]] == [slot], "one fetch of the fence expected"
        fetched = [c for c, _ in probe.fetch_last if c >= probe.fetch_ar[fetches][0]]
        executed = fetched[0] + FETCH_TO_EXECUTE
        offset = accepted - executed
        stored = any(a == addr for _, a in probe.stores)
        seen[offset] = stored
        if offset < 0:
            assert not stored, (f"IOFENCE.PD stored while a request accepted {-offset} "
                                f"cycle(s) before it executed was not retired")
        else:
            assert stored, (f"IOFENCE.PD waited for a request accepted {offset} cycle(s) "
                            f"after it executed")
        tb.hold_write_responses(False)
        pqt += 1
        await tb.wait_field("pqt", "index", pqt)
        await cq.wait_head(cq.tail)
        assert cq.read_u32(addr) == trial + 1
        await tb.consume_pq()
    dut._log.info("offsets (request accepted - fence executed) -> stored while held: %s", seen)
    assert {-2, -1, 0, 1} <= set(seen), f"the sweep missed the race window: {sorted(seen)}"


@cocotb.test()
async def iofence_pd_snapshot_after_prior_response(dut):
    """IOFENCE.PD behind an ATS.PRGR whose response is held: the count is taken in
    the cycle that response is accepted.  Requests accepted before that cycle
    hold the fence back (record acknowledgements held); one accepted in or after
    it does not."""
    tb, cq, probe = await start(dut, log2sz_1=5)
    await tb.device.page_request(did=1, prgi=0, l=0)
    await tb.wait_field("pqt", "index", 1)
    pqt = 1
    seen = {}
    for trial, delay in enumerate(range(0, 8)):
        tb.hold_write_responses(True)
        tb.prg.hold()
        addr = SCRATCH + 0x100 + 4 * trial
        before = len(tb.prg.received)
        await cq.submit(numbered(trial), iofence(pd=True, av=1, data=trial + 1, addr=addr))
        await tb.wait_until(lambda: int(dut.prg_resp_valid.value), what="the response offered")
        await tb.cycles(5)
        req = tb.device.send_nowait(did=1, prgi=trial + 1, l=0)
        await tb.cycles(delay)
        tb.prg.release()
        await tb.device.wait_idle()
        await tb.prg.wait_count(before + 1)
        accepted = tb.device.accepted[-1][0]
        assert tb.device.accepted[-1][1] is req
        snapshot = tb.prg.received[before][0]
        offset = accepted - snapshot
        await tb.cycles(60)
        stored = any(a == addr for _, a in probe.stores)
        seen[offset] = stored
        if offset < 0:
            assert not stored, f"request accepted {-offset} cycle(s) before the snapshot ignored"
        else:
            assert stored, f"IOFENCE.PD waited for a request accepted {offset} cycle(s) after"
        tb.hold_write_responses(False)
        pqt += 1
        await tb.wait_field("pqt", "index", pqt)
        await cq.wait_head(cq.tail)
        assert cq.read_u32(addr) == trial + 1
        await tb.consume_pq()
    dut._log.info("offsets (request accepted - response accepted) -> stored while held: %s", seen)
    assert {-1, 0} <= set(seen), f"the sweep missed the race window: {sorted(seen)}"


@cocotb.test()
async def fences_and_held_auto_responses(dut):
    """An auto-response held on prg_resp: IOFENCE.C does not wait for it (DESIGN
    §3: auto-responses are not covered) and completes with its store;
    IOFENCE.PD does (the request is disposed of only once its auto-response is
    accepted): no store while it is held, the store within a few cycles of its
    acceptance."""
    tb, cq, probe = await start(dut, dids=(1,))
    no_pri = tb.write_dc(2, _TC.pack(v=1, en_ats=1))
    req = request(did=2, prgi=0x21, l=1)
    want = decide(req, ddtp_mode=int(DdtpMode.LVL1), dc_tc=no_pri, dc_load_fault=False,
                  pq_on=True, pq_mf=False, pq_of=False, pq_full=False).response
    tb.prg.hold()
    await tb.device.page_request(**req)
    await tb.wait_until(lambda: int(dut.prg_resp_valid.value), what="the auto-response offered")
    await cq.fence(av=1, data=0xC, addr=SCRATCH)
    assert cq.read_u32(SCRATCH) == 0xC and not tb.prg.received
    (index,) = await cq.submit(iofence(pd=True, av=1, wsi=1, data=0xD, addr=SCRATCH + 4))
    await tb.cycles(200)
    assert [a for _, a in probe.stores] == [SCRATCH], "IOFENCE.PD passed a held auto-response"
    assert await cq.head() == index and (await cq.csr())["fence_w_ip"] == 0
    tb.prg.release()
    await cq.wait_head(index + 1)
    assert tb.prg.responses() == [want]
    accepted = tb.prg.received[0][0]
    store = probe.stores[-1]
    assert store[1] == SCRATCH + 4 and accepted < store[0] <= accepted + 8, (accepted, store)
    assert cq.read_u32(SCRATCH + 4) == 0xD and (await cq.csr())["fence_w_ip"] == 1


# --- randomized, against the transaction-level model --------------------------------------------------

def _random_command(rng, serial, illegal_names):
    r = rng.random()
    if r < 0.55:
        dseg = rng.choice((0, 0, rng.randrange(1, 256)))
        return prgr(did=dseg << 16 | rng.randrange(PRGR_DID, 1 << 16), prgi=rng.randrange(512),
                    pv=rng.randrange(2), pid=rng.randrange(1 << 20),
                    code=rng.choice((0x0, 0x1, 0xF)), ignored=rng.getrandbits(64))
    if r < 0.72:
        return iofence(av=rng.randrange(2), wsi=rng.randrange(2), data=rng.getrandbits(32),
                       addr=SCRATCH + (4 * serial) % SCRATCH_BYTES)
    if r < 0.84:
        return iofence(pd=True, av=rng.randrange(2), wsi=rng.randrange(2),
                       data=rng.getrandbits(32), addr=SCRATCH + (4 * serial) % SCRATCH_BYTES)
    if r < 0.96:
        return inval_ddt(dv=rng.randrange(2), did=rng.randrange(1 << DDT_INDEX_BITS))
    return ILLEGAL[rng.choice(illegal_names)]


@cocotb.test()
async def random_against_model(dut):
    """Random phases of commands (ATS.PRGR, IOFENCE.C/.PD with random AV/WSI,
    IODIR.INVAL_DDT, illegal commands, fetch faults, AV store faults) with page
    requests and back-pressure on prg_resp and memory, checked against
    sw_model.tlm (ATS.PRGR responses in command order, cqh, status bits, the
    memory the fences store to) and sw_model.disposition (auto-responses, PQ
    records); every AV store follows the acceptance of every earlier response
    and precedes that of every later one.  Errors are repaired as a driver
    would (fix the memory or rewrite the command, clear the bit).
    ``PRIFENCE_CQ_PHASES`` sets the number of phases (default 25)."""
    seed = bench_seed()
    rng = random.Random(seed)
    dut._log.info("random_against_model seed=%d (replay with --seed %d)", seed, seed)
    phases = int(os.environ.get("PRIFENCE_CQ_PHASES", "25"))
    tcs = {1: TB.good_tc(), 2: TB.good_tc(prpr=1), 3: _TC.pack(v=1, en_ats=1)}
    tb = TB(dut)
    await tb.reset()
    for did, tc in tcs.items():
        tb.write_dc(did, tc)
    await tb.set_ddtp(DdtpMode.LVL1)
    await tb.enable_pq(log2sz_1=7)
    await tb.enable_fq(log2sz_1=7)
    cq = CommandQueueDriver(tb, log2sz_1=rng.choice((1, 2, 3, 4)))
    model = CommandModel(seed=seed)
    await cq.enable()
    model.write_reg("cqb", log2sz_1=cq.log2sz_1, ppn=cq.ppn)
    model.write_reg("cqcsr", cqen=1, cie=1)
    probe = PortProbe(tb)
    p_resp, p_mem = rng.choice((0.0, 0.3, 0.7, 0.9)), rng.choice((0.0, 0.0, 0.2))
    tb.prg.set_backpressure((rng, p_resp))
    tb.memory_backpressure(rng, p_mem)
    dut._log.info("ring of %d, prg_resp pause %.1f, memory pause %.1f", cq.size, p_resp, p_mem)
    illegal_names = sorted(ILLEGAL)
    want_auto, stored_at = [], set()
    req_dids = (1, 2, 3, 0x80)
    serial = repairs = pq_tail = 0
    kinds = {}

    def sync_memory(index):
        model.write_memory(cq.slot_addr(index), tb.ram.read(cq.slot_addr(index), 16))

    for phase in range(phases):
        words = [_random_command(rng, serial + k, illegal_names)
                 for k in range(rng.randrange(1, cq.size))]
        serial += len(words)
        indices = cq.place(*words)
        for index in indices:
            sync_memory(index)
        for w in words:
            kind, f = decode_command(w)
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind in ("iofence_c", "iofence_pd") and f["av"]:
                stored_at.add(f["addr"] << 2)
        fault = None
        if rng.random() < 0.15:
            lo = cq.slot_addr(rng.choice(indices))
            tb.inject_errors(lo, lo + 16, writes=False)
            model.inject_fetch_fault(lo, lo + 16)
            fault = f"fetch {lo:#x}"
        av_fences = [decode_command(w)[1]["addr"] << 2 for w in words
                     if decode_command(w)[0] in ("iofence_c", "iofence_pd")
                     and decode_command(w)[1]["av"]]
        if av_fences and rng.random() < 0.2:
            lo = rng.choice(av_fences)
            tb.inject_errors(lo, lo + 4, reads=False)
            model.inject_store_fault(lo, lo + 4)
            fault = f"store {lo:#x}"
        reqs = [request(did=rng.choice(req_dids), pv=rng.randrange(2), pid=rng.randrange(1 << 20),
                        l=rng.randrange(2), prgi=rng.randrange(512), addr=rng.randrange(1 << 52))
                for _ in range(rng.randrange(0, 12))]
        want_records = []
        for req in reqs:
            d = decide(req, ddtp_mode=int(DdtpMode.LVL1), dc_tc=tcs.get(req["did"]),
                       dc_load_fault=False, pq_on=True, pq_mf=False, pq_of=False, pq_full=False)
            if d.response is not None:
                want_auto.append(d.response)
            if d.write_record:
                want_records.append(pq_record(req))
            tb.device.queue.append(req)
        dut._log.info("phase %d: %d command(s) at %s, %d request(s), fault %s", phase, len(words),
                      indices, len(reqs), fault)
        await cq.doorbell()
        model.write_reg("cqt", index=cq.tail)
        while True:             # run both until idle; repair each error as a driver would
            model.settle()
            m_head = model.read_reg("cqh")
            m_csr = REG["cqcsr"].decode(model.read_reg("cqcsr"))
            want_prgr = list(model.log.responses)
            stop = "cqmf" if m_csr["cqmf"] else "cmd_ill" if m_csr["cmd_ill"] else None
            try:
                await cq.wait_head(m_head, timeout=30000)
                if stop:
                    await cq.wait_status(stop, timeout=30000)
                got_prgr = await _wait_prgr(tb, len(want_prgr))
            except WaitTimeout as exc:
                raise WaitTimeout(f"phase {phase} (seed {seed}): {exc}") from None
            csr = await cq.csr()
            for bit in ("cqmf", "cmd_ill", "fence_w_ip"):
                assert csr[bit] == m_csr[bit], f"phase {phase} (seed {seed}): {bit}: {csr} {m_csr}"
            assert await cq.head() == m_head, f"phase {phase} (seed {seed}): cqh"
            assert got_prgr == want_prgr, f"phase {phase} (seed {seed}): ATS.PRGR responses differ"
            if stop is None:
                break
            repairs += 1
            tb.clear_errors()
            model.clear_faults()
            if stop == "cmd_ill":
                cq.write_slot(m_head, numbered(serial + repairs))
                sync_memory(m_head)
            await cq.clear(stop)
            model.write_reg("cqcsr", cqen=1, cie=1, **{stop: 1})
        # The phase's page requests: auto-responses and PQ records in arrival order.
        await tb.device.wait_idle(timeout=20000)
        await _wait_auto(tb, len(want_auto))
        got_auto = [r for r in tb.prg.responses() if not is_prgr_response(r)]
        assert got_auto == want_auto, f"phase {phase} (seed {seed}): auto-responses differ"
        pq_tail = (pq_tail + len(want_records)) % 256
        await tb.wait_field("pqt", "index", pq_tail, timeout=20000)
        assert await tb.consume_pq() == want_records, f"phase {phase} (seed {seed}): PQ records"
        await tb.write_reg("fqh", index=await tb.read_reg("fqt"))
        for addr in stored_at:
            assert cq.read_u32(addr) == int.from_bytes(model.read_memory(addr, 4), "little"), \
                f"phase {phase} (seed {seed}): fence store at {addr:#x}"
        if m_csr["fence_w_ip"]:
            await cq.clear("fence_w_ip")
            model.write_reg("cqcsr", cqen=1, cie=1, fence_w_ip=1)
    # Order of every AV store against the responses (all stores to an address:
    # a faulted store and its retry both count).
    accepted = acceptance_cycles(tb)
    stores = {}
    for cycle, addr in probe.stores:
        stores.setdefault(addr, []).append(cycle)
    completed = [f for f in model.log.fences if f["av"]]
    assert len(completed) == len({f["addr"] for f in completed})
    for f in completed:
        n = f["earlier_responses"]
        cycles = stores[f["addr"]]
        if n:
            assert min(cycles) > accepted[n - 1], \
                f"seed {seed}: fence store at {f['addr']:#x} before response {n - 1} was accepted"
        if n < len(accepted):
            assert max(cycles) < accepted[n], \
                f"seed {seed}: response {n} accepted before the fence at {f['addr']:#x} stored"
    dut._log.info("random_against_model: commands %s, %d repairs, %d ATS.PRGR and %d "
                  "auto-responses compared, %d fences with AV", kinds, repairs, len(accepted),
                  len(want_auto), len(completed))


async def _wait_prgr(tb, count, timeout=30000):
    """Wait for ``count`` ATS.PRGR responses in all, then a little longer (so an
    extra one would be seen); returns them."""
    await tb.wait_until(lambda: sum(map(is_prgr_response, tb.prg.responses())) >= count,
                        timeout=timeout, what=f"{count} ATS.PRGR responses")
    await tb.cycles(10)
    return [r for r in tb.prg.responses() if is_prgr_response(r)]


async def _wait_auto(tb, count, timeout=30000):
    await tb.wait_until(lambda: sum(not is_prgr_response(r) for r in tb.prg.responses()) >= count,
                        timeout=timeout, what=f"{count} auto-responses")


# --- measurement ----------------------------------------------------------------------------

@cocotb.test()
async def measure_figures(dut):
    """Issue 4's figures on the Verilated top, in clock cycles, against a memory
    that takes every beat at once:

    * ``fence_after_response_av0``: cycles from the acceptance of the last earlier
      response on prg_resp (held 300 cycles) to cqh past the fence (target <= 4);
      ``fence_store_after_response``: to the AV store's AW handshake (<= 4);
      ``fence_store_answer_after_response``: to the store's B handshake (the
      RAM's write latency); ``fence_after_response_av1``: to cqh past a fence
      with AV=1;
    * ``fence_after_fetch_av0/av1``: a fence with no earlier work, from the last
      beat of its fetch to cqh past it (target <= 8);
    * ``doorbell_to_first_response``: from the start of the cqt write on
      AXI4-Lite to the acceptance of the one ATS.PRGR it exposes;
    * ``prgr_per_clock``: ATS.PRGR responses per clock over 120 commands written
      at once (bound 0.5 at 64 bits, 1.0 at 128).

    The figures go to the JSON file named by ``PRIFENCE_BENCH_OUT`` (if set)."""
    tb, cq, probe = await start(dut, log2sz_1=6)
    fig = {"data_width": tb.data_width}
    for av in (0, 1):
        tb.prg.hold()
        first, _, fence_index = await cq.submit(numbered(0), numbered(1),
                                                iofence(av=av, wsi=1, data=1, addr=SCRATCH))
        await tb.cycles(300)
        assert not probe.stores and await cq.head() <= fence_index
        stores = len(probe.stores)
        tb.prg.release()
        await cq.wait_head(fence_index + 1)
        last = acceptance_cycles(tb)[-1]
        fig[f"fence_after_response_av{av}"] = probe.head_cycle(fence_index + 1, after=last) - last
        if av:
            fig["fence_store_after_response"] = probe.stores[stores][0] - last
            fig["fence_store_answer_after_response"] = probe.store_b[stores][0] - last
        await cq.clear("fence_w_ip")
    for av in (0, 1):
        fetched = len(probe.fetch_last)
        (index,) = await cq.submit(iofence(av=av, wsi=1, data=2, addr=SCRATCH))
        await cq.wait_head(index + 1)
        last_beat = probe.fetch_last[fetched][0]
        fig[f"fence_after_fetch_av{av}"] = probe.head_cycle(index + 1, after=last_beat) - last_beat
    # Doorbell to first response: the cqt write starts on AXI4-Lite with one
    # ATS.PRGR in the ring; prg_resp is ready and memory answers at once.
    await tb.cycles(20)
    before = len(tb.prg.received)
    cq.place(numbered(1000))
    rung = cycles_now()
    await cq.doorbell()
    await tb.prg.wait_count(before + 1, timeout=200)
    fig["doorbell_to_first_response"] = tb.prg.received[before][0] - rung
    n = 120
    before = len(tb.prg.received)
    await cq.submit(*[numbered(k) for k in range(n)])
    await tb.prg.wait_count(before + n, timeout=20 * n)
    cycles = [c for c, _ in tb.prg.received[before:]]
    fig["prgr_per_clock"] = round((n - 1) / (cycles[-1] - cycles[0]), 3)
    fig["prgr_bound_per_clock"] = tb.data_width / 128
    dut._log.info("measure_figures: %s", fig)
    out = os.environ.get("PRIFENCE_BENCH_OUT")
    if out:
        with open(out, "w") as handle:
            json.dump(fig, handle)
    assert fig["fence_after_response_av0"] <= 4, fig
    assert fig["fence_store_after_response"] <= 4, fig
    assert fig["fence_after_fetch_av0"] <= 8 and fig["fence_after_fetch_av1"] <= 8, fig
    assert fig["prgr_per_clock"] >= 0.95 * fig["prgr_bound_per_clock"], fig

"""Commands, fences, the device-context cache and disposition of the
transaction-level model against DESIGN §3–§4."""

import pytest

from prifence.formats import (
    DC_BYTES, FQ_RECORD_BYTES, PQ_RECORD_BYTES, REG, Cause, DdtpMode, FqRecord, PqRecord,
    codec,
)
from sw_model.disposition import pq_record
from sw_model.tlm import Memory, decode_command

from swm_harness import (
    DDT, FQ, GOOD_TC, PQ, STORE, TC, Harness, Sink, fence, inval, prgr, req,
)


def cqcsr(value):
    return REG["cqcsr"].decode(value)


def test_prgr_sends_the_response_as_written():
    async def body(h):
        await h.bring_up()
        dev = Sink()
        h.engine.attach_device(0x21_0005, dev)
        await h.submit(prgr(did=0x21_0005, prgi=300, code=1, pv=1, pid=0xABC),
                       prgr(did=0x21_0005, prgi=301, code=0xF, pv=0, pid=0xABC))
        await h.settle()
        return dev.responses, await h.rd("cqh")
    h = Harness()
    responses, cqh = h.run(body(h))
    assert responses == [
        {"did": 0x21_0005, "pv": 1, "pid": 0xABC, "prgi": 300, "code": 1},
        {"did": 0x21_0005, "pv": 0, "pid": 0, "prgi": 301, "code": 0xF},   # pid 0 when pv 0
    ]
    assert cqh == 2


def test_prgr_forwards_a_reserved_code():
    async def body(h):
        await h.bring_up()
        dev = Sink()
        h.engine.attach_device(1, dev)
        await h.submit(prgr(code=0x7))
        await h.settle()
        return dev.responses
    h = Harness()
    assert h.run(body(h))[0]["code"] == 0x7


@pytest.mark.parametrize("word,why", [
    (0x7F, "unknown opcode"),
    (1 | (0 << 7), "IOTINVAL is not implemented"),
    (prgr() | (1 << 10), "PRGR reserved dw0 bit 10"),
    (prgr() | (1 << 34), "PRGR reserved dw0 bit 34"),
    (fence(1) | (1 << 14), "IOFENCE reserved bit 14"),
    (fence(1) | (1 << 127), "IOFENCE reserved dw1 bit 63"),
    (fence(1, addr=0) | ((1 << 54) << 64), "IOFENCE ADDR past 56 bits"),
    (inval(did=1, pid=3), "INVAL_DDT with PID"),
    (inval(did=1 << 7), "INVAL_DDT DV=1 DID too wide"),
    (inval() | (1 << 70), "INVAL_DDT reserved dw1"),
])
def test_illegal_commands_set_cmd_ill_and_stop_with_head_on_them(word, why):
    async def body(h):
        await h.bring_up()
        dev = Sink()
        h.engine.attach_device(1, dev)
        await h.submit(prgr(prgi=1), word, prgr(prgi=2))
        await h.settle()
        stopped = (cqcsr(await h.rd("cqcsr")), await h.rd("cqh"), len(dev.responses),
                   REG["ipsr"].get(await h.rd("ipsr"), "cip"))
        # Recover: disable, empty the ring, re-enable; the command after it then runs.
        await h.wr("cqcsr", 0)
        await h.wait_on("cqcsr", "cqon", 0)
        h.mem.write(0x20_000, prgr(prgi=2).to_bytes(16, "little"))
        await h.wr("cqt", 0)
        await h.wr("cqcsr", REG["cqcsr"].encode(cqen=1))
        await h.wait_on("cqcsr", "cqon")
        await h.wr("cqt", 1)
        await h.settle()
        return stopped, [r["prgi"] for r in dev.responses], cqcsr(await h.rd("cqcsr"))
    h = Harness()
    (csr, cqh, sent, cip), prgis, after = h.run(body(h))
    assert decode_command(word)[0] == "illegal", why
    assert csr["cmd_ill"] == 1 and cqh == 1 and sent == 1 and cip == 1
    assert prgis == [1, 2] and after["cmd_ill"] == 0


def test_iofence_c_waits_for_earlier_prgr_responses_then_stores_and_sets_fence_w_ip():
    order = []

    class Recorder(Sink):
        def on_prg_response(self, resp):
            order.append(("resp", resp["prgi"], h.store()))

    async def body(h):
        await h.bring_up()
        h.engine.attach_device(1, Recorder())
        await h.submit(prgr(prgi=1), prgr(prgi=2), prgr(prgi=3), fence(0xCAFE, wsi=1))
        await h.settle()
        return h.store(), cqcsr(await h.rd("cqcsr")), await h.rd("cqh"), await h.rd("ipsr")
    h = Harness(mem_latency=(1, 8))
    store, csr, cqh, ipsr = h.run(body(h))
    assert [o[1] for o in order] == [1, 2, 3]
    assert all(o[2] == 0 for o in order)          # no store before the responses were sent
    assert store == 0xCAFE and csr["fence_w_ip"] == 1 and cqh == 4
    assert REG["ipsr"].get(ipsr, "cip") == 1


def test_faulting_fence_store_sets_cqmf_and_leaves_head_on_it():
    async def body(h):
        await h.bring_up()
        h.mem.inject_fault(STORE, STORE + 4, kind="w")
        await h.submit(fence(5))
        await h.settle()
        return h.store(), cqcsr(await h.rd("cqcsr")), await h.rd("cqh")
    h = Harness()
    store, csr, cqh = h.run(body(h))
    assert store == 0 and csr["cqmf"] == 1 and csr["fence_w_ip"] == 0 and cqh == 0


def test_command_fetch_fault_sets_cqmf():
    async def body(h):
        await h.bring_up()
        h.mem.inject_fault(0x20_000 + 16, 0x20_000 + 32, kind="r")
        dev = Sink()
        h.engine.attach_device(1, dev)
        await h.submit(prgr(prgi=1), prgr(prgi=2))
        await h.settle()
        return cqcsr(await h.rd("cqcsr")), await h.rd("cqh"), len(dev.responses)
    h = Harness()
    csr, cqh, sent = h.run(body(h))
    assert csr["cqmf"] == 1 and cqh == 1 and sent == 1


def test_disabling_the_cq_abandons_a_waiting_fence():
    async def body(h):
        await h.bring_up()
        # A PD fence that cannot complete yet: a request sits behind a slow context read.
        h.engine.attach_device(1, Sink())
        h.engine.spawn(h.engine.send_page_request(req()), "dev")
        await h.submit(fence(9, pd=True))
        await h.engine.delay(2)
        await h.wr("cqcsr", 0)
        await h.wait_on("cqcsr", "cqon", 0)
        await h.settle()
        return h.store(), await h.rd("cqh"), cqcsr(await h.rd("cqcsr"))
    h = Harness(mem_latency=(20, 20))
    store, cqh, csr = h.run(body(h))
    assert store == 0 and cqh == 0 and csr["fence_w_ip"] == 0


def test_iofence_pd_completes_only_after_every_earlier_request_retired():
    seen = []

    class Recorder(Sink):
        def on_prg_response(self, resp):
            seen.append(("resp", h.store()))

    async def body(h):
        await h.bring_up(log2sz_1=0)               # 2-entry PQ: later requests overflow
        h.engine.attach_device(1, Recorder())
        for i in range(6):
            await h.engine.send_page_request(req(prgi=i))
        await h.submit(fence(0xD0D0, pd=True))
        await h.settle(400)
        return h.store(), h.hw.accepted, h.hw.retired
    h = Harness(mem_latency=(5, 12))
    store, accepted, retired = h.run(body(h))
    assert store == 0xD0D0
    assert accepted == retired == 6
    # every auto-response (Success for the ones that did not fit) came before the store
    assert len(seen) == 5 and all(s == 0 for _, s in seen)


def test_device_context_cache_and_inval_ddt():
    async def body(h):
        await h.bring_up()
        dev = Sink()
        h.engine.attach_device(1, dev)
        await h.engine.send_page_request(req(prgi=1))          # cached: EN_PRI=1 -> queued
        await h.settle(50)
        h.mem.write(DDT + DC_BYTES, TC.pack(v=1, en_ats=1).to_bytes(8, "little"))
        await h.engine.send_page_request(req(prgi=2))          # still the cached context
        await h.settle(50)
        queued_before = await h.rd("pqt")
        await h.submit(inval(did=1), fence(1))
        await h.settle(50)
        await h.engine.send_page_request(req(prgi=3))          # now EN_PRI=0: Invalid
        await h.settle(50)
        return queued_before, await h.rd("pqt"), dev.responses
    h = Harness()
    before, after, responses = h.run(body(h))
    assert before == 2 and after == 2
    assert responses == [{"did": 1, "pv": 0, "pid": 0, "prgi": 3, "code": 1}]


def test_ddtp_write_empties_the_context_cache():
    async def body(h):
        await h.bring_up()
        h.engine.attach_device(1, Sink())
        await h.engine.send_page_request(req(prgi=1))
        await h.settle(50)
        cached = dict(h.hw.dc_cache)
        await h.wr64("ddtp", REG["ddtp"].encode(iommu_mode=DdtpMode.BARE))
        return cached, dict(h.hw.dc_cache)
    h = Harness()
    cached, after = h.run(body(h))
    assert cached == {1: GOOD_TC} and after == {}


def test_queued_record_is_the_pq_record_in_memory():
    r = req(pv=1, pid=0x77, priv=1, exec=1, prgi=0x1FF, addr=(1 << 52) - 1)

    async def body(h):
        await h.bring_up()
        h.engine.attach_device(1, Sink())
        await h.engine.send_page_request(r)
        await h.settle(50)
        return await h.rd("pqt"), h.mem.read(PQ, PQ_RECORD_BYTES)
    h = Harness()
    pqt, raw = h.run(body(h))
    assert pqt == 1
    assert int.from_bytes(raw, "little") == pq_record(r)
    assert codec(PqRecord).unpack(pq_record(r))["addr"] == (1 << 52) - 1


@pytest.mark.parametrize("mode,code,cause", [
    (DdtpMode.OFF, 0xF, Cause.ALL_INBOUND_DISALLOWED),
    (DdtpMode.BARE, 0x1, Cause.TRANSACTION_TYPE_DISALLOWED),
])
def test_ddtp_off_and_bare_answer_and_record_a_fault(mode, code, cause):
    async def body(h):
        await h.bring_up(ddtp=False)
        if mode == DdtpMode.BARE:
            await h.wr64("ddtp", REG["ddtp"].encode(iommu_mode=DdtpMode.BARE))
        dev = Sink()
        h.engine.attach_device(1, dev)
        await h.engine.send_page_request(req(l=0, prgi=4))     # L=0: dropped, but FQ record
        await h.engine.send_page_request(req(prgi=4))
        await h.settle(50)
        return dev.responses, await h.rd("fqt"), h.mem.read(FQ, 2 * FQ_RECORD_BYTES)
    h = Harness()
    responses, fqt, raw = h.run(body(h))
    assert [r["code"] for r in responses] == [code]
    assert fqt == 2
    fq = codec(FqRecord)
    for i in range(2):
        f = fq.unpack(int.from_bytes(raw[i * 32:(i + 1) * 32], "little"))
        assert (f["cause"], f["ttyp"], f["iotval"], f["did"]) == (cause, 9, 4, 1)


def test_pq_store_fault_sets_pqmf_and_answers_later_in_flight_requests():
    async def body(h):
        await h.bring_up()
        dev = Sink()
        h.engine.attach_device(1, dev)
        h.mem.inject_fault(PQ, PQ + 16, kind="w")               # slot 0 faults
        for i in range(3):
            await h.engine.send_page_request(req(prgi=i))
        await h.settle(100)
        return (REG["pqcsr"].decode(await h.rd("pqcsr")), await h.rd("pqt"),
                sorted((r["prgi"], r["code"], r["pv"]) for r in dev.responses))
    h = Harness(mem_latency=(6, 6))
    csr, pqt, responses = h.run(body(h))
    assert csr["pqmf"] == 1 and pqt == 0
    # request 0 faulted; 1 and 2 were discarded with it or refused while pqmf is set:
    # all answered Response Failure, with their PASID.
    assert responses == [(0, 0xF, 1), (1, 0xF, 1), (2, 0xF, 1)]


def test_memory_fault_ranges_follow_time_windows():
    now = [0]
    mem = Memory(lambda: now[0])
    mem.inject_fault(0x1000, 0x2000, kind="w", start=10, end=20)
    assert not mem.faulty(0x1800, 8, write=True)
    now[0] = 15
    assert mem.faulty(0x1FFC, 8, write=True) and not mem.faulty(0x1800, 8, write=False)
    assert not mem.faulty(0x2000, 8, write=True)
    now[0] = 20
    assert not mem.faulty(0x1800, 8, write=True)
    with pytest.raises(ValueError):
        mem.inject_fault(5, 5)
    with pytest.raises(ValueError):
        mem.inject_fault(0, 5, kind="x")


def test_memory_reads_and_writes_across_pages():
    mem = Memory(lambda: 0)
    data = bytes(range(256)) * 40
    mem.write(0x1F00, data)
    assert mem.read(0x1F00, len(data)) == data
    assert mem.read(0x9000, 4) == bytes(4)

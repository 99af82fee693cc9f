"""The register file of the transaction-level model against DESIGN §2."""

import pytest

from prifence.formats import ADDR_WIDTH, CAPABILITIES_VERSION, REG, REGISTERS, DdtpMode

from swm_harness import CQ, DDT, PQ, Harness, Sink, req


def run(body, **kw):
    h = Harness(**kw)
    return h, h.run(body(h))


def test_reset_values():
    async def body(h):
        return {r.name: await h.rd64(r.name) if r.size == 8 else await h.rd(r.name) for r in REGISTERS}
    _, values = run(body)
    caps = REG["capabilities"].decode(values.pop("capabilities"))
    assert caps == {"version": CAPABILITIES_VERSION, "ats": 1, "igs": 1, "pas": ADDR_WIDTH}
    assert REG["fctl"].decode(values.pop("fctl")) == {"be": 0, "wsi": 1, "gxl": 0}
    assert values == {name: 0 for name in values}


def test_unmapped_offsets_read_zero_and_ignore_writes():
    async def body(h):
        await h.engine.reg_write(88, 0xFFFF_FFFF)
        await h.engine.reg_write(0x400, 0xFFFF_FFFF)
        return [await h.engine.reg_read(off) for off in (88, 92, 0x400, 0xFFC)]
    _, values = run(body)
    assert values == [0, 0, 0, 0]


def test_64bit_register_commits_on_low_word_with_held_high_word():
    ppn = 0x1_2345_6789 & ((1 << 44) - 1)
    value = REG["ddtp"].encode(iommu_mode=DdtpMode.LVL1, ppn=ppn)

    async def body(h):
        await h.wr("ddtp", value >> 32, word=1)
        before = await h.rd64("ddtp")             # high word only held, not committed
        await h.wr("ddtp", value & 0xFFFF_FFFF)
        after = await h.rd64("ddtp")
        return before, after
    h, (before, after) = run(body)
    assert before == 0
    assert after == value
    assert h.hw.ddtp_mode == DdtpMode.LVL1 and h.hw.ddtp_ppn == ppn


def test_ddtp_rules():
    lvl1 = REG["ddtp"].encode(iommu_mode=DdtpMode.LVL1, ppn=DDT >> 12)
    other = REG["ddtp"].encode(iommu_mode=DdtpMode.LVL1, ppn=(DDT >> 12) + 1)

    async def body(h):
        seen = []
        await h.wr64("ddtp", REG["ddtp"].encode(iommu_mode=5, ppn=3))       # no such mode
        seen.append(await h.rd64("ddtp"))
        await h.wr64("ddtp", lvl1)
        seen.append(await h.rd64("ddtp"))
        await h.wr64("ddtp", other)                                          # 1LVL -> 1LVL
        seen.append(await h.rd64("ddtp"))
        await h.wr64("ddtp", REG["ddtp"].encode(iommu_mode=DdtpMode.BARE))
        await h.wr64("ddtp", other)                                          # through Bare
        seen.append(await h.rd64("ddtp"))
        await h.wr("ddtp", REG["ddtp"].encode(busy=1) | (other & 0xFFFF_FFFF))
        seen.append(REG["ddtp"].get(await h.rd64("ddtp"), "busy"))
        return seen
    _, seen = run(body)
    assert seen == [0, lvl1, lvl1, other, 0]


def test_strobes_keep_unstrobed_bytes():
    async def body(h):
        await h.wr64("cqb", REG["cqb"].encode(log2sz_1=15, ppn=CQ >> 12))
        await h.wr("cqt", 0x1234)
        await h.wr("cqt", 0xAB56, strb=0x1)                 # only byte 0
        return await h.rd("cqt")
    _, value = run(body)
    assert value == 0x1256


def test_queue_base_is_warl_and_ignored_while_enabled():
    async def body(h):
        await h.wr64("pqb", REG["pqb"].encode(log2sz_1=31, ppn=PQ >> 12))
        size = REG["pqb"].get(await h.rd64("pqb"), "log2sz_1")
        await h.wr("pqcsr", REG["pqcsr"].encode(pqen=1))
        await h.wait_on("pqcsr", "pqon")
        await h.wr64("pqb", REG["pqb"].encode(log2sz_1=2, ppn=7))
        while_on = await h.rd64("pqb")
        await h.wr("pqh", 5)
        await h.wr("pqcsr", 0)
        await h.wait_on("pqcsr", "pqon", 0)
        await h.wr64("pqb", REG["pqb"].encode(log2sz_1=2, ppn=7))
        return size, while_on, await h.rd64("pqb"), await h.rd("pqh")
    _, (size, while_on, after, pqh) = run(body)
    assert size == 15
    assert REG["pqb"].decode(while_on) == {"log2sz_1": 15, "ppn": PQ >> 12}
    assert REG["pqb"].decode(after) == {"log2sz_1": 2, "ppn": 7}
    assert pqh == 0                    # an accepted base write zeroes the software index


def test_index_registers_keep_low_bits_and_read_only_ones_ignore_writes():
    async def body(h):
        await h.wr64("cqb", REG["cqb"].encode(log2sz_1=2, ppn=CQ >> 12))    # 8 entries
        await h.wr("cqt", 0xFFFF_FFFF)
        await h.wr("cqh", 5)
        await h.wr("pqt", 5)
        return await h.rd("cqt"), await h.rd("cqh"), await h.rd("pqt")
    _, values = run(body)
    assert values == (7, 0, 0)


def test_enable_timing_busy_and_writes_ignored_while_busy():
    async def body(h):
        await h.wr64("cqb", REG["cqb"].encode(log2sz_1=3, ppn=CQ >> 12))
        h.hw.reg_write(REG["cqcsr"].offset, REG["cqcsr"].encode(cqen=1))
        first = REG["cqcsr"].decode(h.hw.reg_read(REG["cqcsr"].offset))
        h.hw.reg_write(REG["cqcsr"].offset, 0)              # ignored: busy
        await h.engine.delay(1)
        second = REG["cqcsr"].decode(h.hw.reg_read(REG["cqcsr"].offset))
        return first, second
    _, (first, second) = run(body)
    assert (first["cqen"], first["cqon"], first["busy"]) == (1, 0, 1)
    assert (second["cqen"], second["cqon"], second["busy"]) == (1, 1, 0)


def test_overflow_sets_w1c_pqof_and_pip_which_is_reasserted_while_set():
    async def body(h):
        await h.bring_up(log2sz_1=0)                        # 2 entries: one record fills it
        dev = Sink()
        h.engine.attach_device(1, dev)
        for i in range(3):
            await h.engine.send_page_request(req(prgi=i))
        await h.settle(100)
        csr = REG["pqcsr"].decode(await h.rd("pqcsr"))
        await h.wr("pqcsr", REG["pqcsr"].encode(pqen=1, pie=1))          # pqof written 0: kept
        kept = REG["pqcsr"].get(await h.rd("pqcsr"), "pqof")
        await h.wr("ipsr", REG["ipsr"].encode(pip=1))                     # set again at once
        pip_again = REG["ipsr"].get(await h.rd("ipsr"), "pip")
        await h.wr("pqcsr", REG["pqcsr"].encode(pqen=1, pie=1, pqof=1))  # W1C
        cleared = REG["pqcsr"].get(await h.rd("pqcsr"), "pqof")
        await h.wr("ipsr", REG["ipsr"].encode(pip=1))
        pip_after = REG["ipsr"].get(await h.rd("ipsr"), "pip")
        return csr, kept, pip_again, cleared, pip_after, dev.responses
    _, (csr, kept, pip_again, cleared, pip_after, responses) = run(body)
    assert csr["pqof"] == 1 and kept == 1 and pip_again == 1
    assert cleared == 0 and pip_after == 0
    assert [r["code"] for r in responses] == [0, 0]          # the two that did not fit: Success


def test_pip_not_set_without_pie_and_enable_alone_sets_nothing():
    async def body(h):
        await h.wr64("pqb", REG["pqb"].encode(log2sz_1=3, ppn=PQ >> 12))
        await h.wr("pqcsr", REG["pqcsr"].encode(pqen=1))                  # pie = 0
        await h.wait_on("pqcsr", "pqon")
        await h.bring_up(pq=False)
        await h.engine.send_page_request(req())
        await h.settle(50)
        no_pie = (await h.rd("ipsr"), await h.rd("pqt"))
        await h.wr("pqcsr", REG["pqcsr"].encode(pqen=1, pie=1))
        return no_pie, await h.rd("ipsr")
    _, (no_pie, after_enable) = run(body)
    assert no_pie == (0, 1)
    assert after_enable == 0


def test_enabling_a_queue_zeroes_its_hardware_index_and_clears_errors():
    async def body(h):
        await h.bring_up(log2sz_1=0)
        h.engine.attach_device(1, Sink())
        for i in range(3):
            await h.engine.send_page_request(req(prgi=i))
        await h.settle(50)
        before = (await h.rd("pqt"), REG["pqcsr"].get(await h.rd("pqcsr"), "pqof"))
        await h.wr("pqcsr", 0)
        await h.wait_on("pqcsr", "pqon", 0)
        await h.wr("pqcsr", REG["pqcsr"].encode(pqen=1))
        return before, await h.rd("pqt"), REG["pqcsr"].get(await h.rd("pqcsr"), "pqof")
    _, (before, pqt, pqof) = run(body)
    assert before == (1, 1)
    assert (pqt, pqof) == (0, 0)


def test_bad_parameters_are_rejected():
    from sw_model.tlm import TlmEngine
    with pytest.raises(TypeError, match="seed"):
        TlmEngine(seed="x")
    with pytest.raises(TypeError, match="mem_latency"):
        TlmEngine(seed=1, mem_latency=(0, 3))
    with pytest.raises(TypeError, match="hardware_cls"):
        TlmEngine(seed=1, hardware_cls=dict)

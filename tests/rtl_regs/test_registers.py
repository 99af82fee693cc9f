"""The register file (DESIGN.md §2) on Amaranth's simulator, through its AXI4-Lite port."""

import random

import pytest
from amaranth.sim import Simulator

from prifence.formats import REG, REGISTERS, CAPABILITIES_VERSION, MAX_LOG2SZ_1, DdtpMode
from rtl.registers import RegisterFile, QUEUES


class Bench:
    """AXI4-Lite master and queue-engine stand-ins around a RegisterFile."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self.ddtp_writes = 0

    async def tick(self, n=1):
        for _ in range(n):
            await self.ctx.tick()

    async def write(self, offset, data, strb=0xF):
        bus, ctx = self.dut.bus, self.ctx
        ctx.set(bus.awaddr, offset)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, strb)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        aw = w = False
        for _ in range(10):
            if ctx.get(bus.awready):
                aw = True
            if ctx.get(bus.wready):
                w = True
            await ctx.tick()
            if aw:
                ctx.set(bus.awvalid, 0)
            if w:
                ctx.set(bus.wvalid, 0)
            if aw and w:
                break
        for _ in range(10):
            if ctx.get(bus.bvalid):
                assert ctx.get(bus.bresp) == 0
                if ctx.get(self.dut.ddtp.written):
                    self.ddtp_writes += 1
                await ctx.tick()
                ctx.set(bus.bready, 0)
                return
            if ctx.get(self.dut.ddtp.written):
                self.ddtp_writes += 1
            await ctx.tick()
        raise AssertionError(f"no write response for offset {offset:#x}")

    async def read(self, offset):
        bus, ctx = self.dut.bus, self.ctx
        ctx.set(bus.araddr, offset)
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.rready, 1)
        for _ in range(10):
            accepted = ctx.get(bus.arready)
            await ctx.tick()
            if accepted:
                ctx.set(bus.arvalid, 0)
                break
        for _ in range(10):
            if ctx.get(bus.rvalid):
                value = ctx.get(bus.rdata)
                assert ctx.get(bus.rresp) == 0
                await ctx.tick()
                ctx.set(bus.rready, 0)
                return value
            await ctx.tick()
        raise AssertionError(f"no read data for offset {offset:#x}")

    async def write_reg(self, name, **fields):
        reg = REG[name]
        value = reg.encode(**fields)
        if reg.size == 8:
            await self.write(reg.offset + 4, value >> 32)
        await self.write(reg.offset, value & 0xFFFF_FFFF)

    async def read_reg(self, name):
        reg = REG[name]
        value = await self.read(reg.offset)
        if reg.size == 8:
            value |= (await self.read(reg.offset + 4)) << 32
        return reg.decode(value)

    def engine(self, q):
        return getattr(self.dut, q)


def run(body, *, follow_enable=True):
    """Run ``body(bench)``; with ``follow_enable`` each queue's ``on`` follows its
    enable one cycle later, as a queue engine with nothing in flight does."""
    dut = RegisterFile()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    if follow_enable:
        async def engines(ctx):
            ports = [getattr(dut, q) for q in QUEUES]
            async for _, _, *enables in ctx.tick().sample(*(p.enable for p in ports)):
                for port, enable in zip(ports, enables):
                    ctx.set(port.on, enable)
        sim.add_process(engines)

    async def testbench(ctx):
        await body(Bench(ctx, dut))
    sim.add_testbench(testbench)
    sim.run()


def test_reset_values():
    async def body(tb):
        for reg in REGISTERS:
            got = await tb.read_reg(reg.name)
            if reg.name == "capabilities":
                assert got["version"] == CAPABILITIES_VERSION
                assert got["ats"] == 1 and got["igs"] == 1 and got["pas"] == 56
            elif reg.name == "fctl":
                assert got == {"be": 0, "wsi": 1, "gxl": 0}
            else:
                assert all(v == 0 for v in got.values()), (reg.name, got)
    run(body)


def test_64bit_register_commits_held_high_word_with_low_word():
    async def body(tb):
        off = REG["pqb"].offset
        await tb.write(off + 4, 0x0000_0012)           # held, not committed
        assert await tb.read(off + 4) == 0
        await tb.write(off, 0x0001_2C05)               # commit {held, low}
        got = await tb.read_reg("pqb")
        value = (0x12 << 32) | 0x0001_2C05
        assert got == REG["pqb"].decode(value & ((1 << 54) - 1) & ~0x3E0)
        # A later low-word write reuses the held high word.
        await tb.write(off, 0x0000_0403)
        assert (await tb.read(off + 4)) == 0x12
        assert (await tb.read_reg("pqb"))["log2sz_1"] == 3
    run(body)


def test_queue_base_is_warl_and_masks_reserved_bits():
    async def body(tb):
        await tb.write(REG["cqb"].offset + 4, 0xFFFF_FFFF)
        await tb.write(REG["cqb"].offset, 0xFFFF_FFFF)
        got = await tb.read_reg("cqb")
        assert got["log2sz_1"] == MAX_LOG2SZ_1
        assert got["ppn"] == (1 << 44) - 1
        raw = await tb.read(REG["cqb"].offset) | (await tb.read(REG["cqb"].offset + 4)) << 32
        assert raw & ~(REG["cqb"].field("ppn").mask | REG["cqb"].field("log2sz_1").mask) == 0
    run(body)


def test_ddtp_rejects_unsupported_modes_and_1lvl_to_1lvl():
    async def body(tb):
        for mode in (3, 4, 7, 15):
            await tb.write_reg("ddtp", iommu_mode=mode, ppn=5)
            assert (await tb.read_reg("ddtp")) == {"iommu_mode": 0, "busy": 0, "ppn": 0}
        assert tb.ddtp_writes == 0
        await tb.write_reg("ddtp", iommu_mode=DdtpMode.LVL1, ppn=0x123)
        assert tb.ddtp_writes == 1
        await tb.write_reg("ddtp", iommu_mode=DdtpMode.LVL1, ppn=0x456)    # ignored whole
        assert (await tb.read_reg("ddtp"))["ppn"] == 0x123
        assert tb.ddtp_writes == 1
        await tb.write_reg("ddtp", iommu_mode=DdtpMode.BARE)
        await tb.write_reg("ddtp", iommu_mode=DdtpMode.LVL1, ppn=0x456)
        assert (await tb.read_reg("ddtp")) == {"iommu_mode": 2, "busy": 0, "ppn": 0x456}
        assert tb.ddtp_writes == 3
        # The busy bit is not writable; reserved bits read 0.
        await tb.write(REG["ddtp"].offset, 0xFFFF_FFF1)
        assert (await tb.read(REG["ddtp"].offset)) & 0x3F0 == 0
    run(body)


def test_base_write_ignored_while_enabled_and_accepted_write_zeroes_sw_index():
    async def body(tb):
        await tb.write_reg("pqb", log2sz_1=3, ppn=0x40)
        await tb.write_reg("pqh", index=5)
        assert (await tb.read_reg("pqh"))["index"] == 5
        await tb.write_reg("pqcsr", pqen=1)
        await tb.write_reg("pqb", log2sz_1=5, ppn=0x80)
        assert (await tb.read_reg("pqb")) == {"log2sz_1": 3, "ppn": 0x40}
        assert (await tb.read_reg("pqh"))["index"] == 5
        await tb.write_reg("pqcsr", pqen=0)
        await tb.write_reg("pqb", log2sz_1=5, ppn=0x80)
        assert (await tb.read_reg("pqb")) == {"log2sz_1": 5, "ppn": 0x80}
        assert (await tb.read_reg("pqh"))["index"] == 0
    run(body)


def test_indices_keep_low_log2sz_bits_and_honour_strobes():
    async def body(tb):
        await tb.write_reg("cqb", log2sz_1=2, ppn=1)         # 8 entries
        await tb.write(REG["cqt"].offset, 0xFFFF_FFFD)
        assert await tb.read(REG["cqt"].offset) == 5
        await tb.write_reg("fqb", log2sz_1=9, ppn=1)         # 1024 entries
        await tb.write(REG["fqh"].offset, 0x0000_0123)
        await tb.write(REG["fqh"].offset, 0x0000_0200, strb=0b0010)   # byte 1 only
        assert await tb.read(REG["fqh"].offset) == 0x223
        # Hardware-owned indices are read-only.
        await tb.write(REG["fqt"].offset, 7)
        assert await tb.read(REG["fqt"].offset) == 0
    run(body)


def test_csr_write_ignored_while_busy():
    async def body(tb):
        ctx, pq = tb.ctx, tb.dut.pq
        await tb.write_reg("pqcsr", pqen=1, pie=1)
        assert (await tb.read_reg("pqcsr"))["pqon"] == 1
        # Disable while the engine still has writes in flight: on stays 1.
        ctx.set(pq.set_status.pqof, 1)
        await tb.tick()
        ctx.set(pq.set_status.pqof, 0)
        await tb.write_reg("pqcsr", pqen=0, pie=1)
        got = await tb.read_reg("pqcsr")
        assert got["pqen"] == 0 and got["pqon"] == 0 and got["busy"] == 0
    run(body)

    async def body_busy(tb):
        ctx, pq = tb.ctx, tb.dut.pq
        await tb.write_reg("pqcsr", pqen=1, pie=1)      # on stays 0: busy
        got = await tb.read_reg("pqcsr")
        assert got["pqen"] == 1 and got["pqon"] == 0 and got["busy"] == 1
        ctx.set(pq.set_status.pqmf, 1)
        await tb.tick()
        ctx.set(pq.set_status.pqmf, 0)
        await tb.write_reg("pqcsr", pqen=0, pie=0, pqmf=1)   # ignored whole
        got = await tb.read_reg("pqcsr")
        assert got["pqen"] == 1 and got["pie"] == 1 and got["pqmf"] == 1
        ctx.set(pq.on, 1)
        await tb.write_reg("pqcsr", pqen=1, pie=1, pqmf=1)   # W1C accepted now
        got = await tb.read_reg("pqcsr")
        assert got["pqmf"] == 0 and got["busy"] == 0
    run(body_busy, follow_enable=False)


def test_enable_clears_error_bits_and_set_wins_over_clear():
    async def body(tb):
        ctx, cq = tb.ctx, tb.dut.cq
        for n in ("cqmf", "cmd_ill", "fence_w_ip"):
            ctx.set(getattr(cq.set_status, n), 1)
        await tb.tick()
        for n in ("cqmf", "cmd_ill", "fence_w_ip"):
            ctx.set(getattr(cq.set_status, n), 0)
        got = await tb.read_reg("cqcsr")
        assert got["cqmf"] == got["cmd_ill"] == got["fence_w_ip"] == 1
        await tb.write_reg("cqcsr", cqen=1)
        got = await tb.read_reg("cqcsr")
        assert got["cqmf"] == got["cmd_ill"] == 0 and got["cqon"] == 1
        assert got["fence_w_ip"] == 1            # not an error bit
        # Software clears fence_w_ip in the very cycle the hardware sets it again.
        ctx.set(cq.set_status.fence_w_ip, 1)
        await tb.write_reg("cqcsr", cqen=1, fence_w_ip=1)
        ctx.set(cq.set_status.fence_w_ip, 0)
        assert (await tb.read_reg("cqcsr"))["fence_w_ip"] == 1
        await tb.write_reg("cqcsr", cqen=1, fence_w_ip=1)
        assert (await tb.read_reg("cqcsr"))["fence_w_ip"] == 0
    run(body)


@pytest.mark.parametrize("q", QUEUES)
def test_interrupt_pending_rules(q):
    bit = {"cq": "cip", "fq": "fip", "pq": "pip"}[q]
    error = {"cq": "cmd_ill", "fq": "fqof", "pq": "pqof"}[q]
    en, ie = f"{q}en", f"{q[0]}ie"

    async def pulse(tb, signal):
        tb.ctx.set(signal, 1)
        await tb.tick()
        tb.ctx.set(signal, 0)

    async def body(tb):
        port = tb.engine(q)
        irq = getattr(tb.dut, f"irq_{q}")
        await tb.write_reg(f"{q}csr", **{en: 1})
        if q != "cq":
            await pulse(tb, port.notify)             # ie=0: not pending
        await pulse(tb, getattr(port.set_status, error))
        assert (await tb.read_reg("ipsr"))[bit] == 0
        await tb.write_reg(f"{q}csr", **{en: 1, ie: 1, error: 1})
        assert (await tb.read_reg("ipsr"))[bit] == 0   # enabling ie alone sets nothing
        if q != "cq":
            await pulse(tb, port.notify)
            assert (await tb.read_reg("ipsr"))[bit] == 1 and tb.ctx.get(irq) == 1
            await tb.write_reg("ipsr", **{bit: 1})
            assert (await tb.read_reg("ipsr"))[bit] == 0 and tb.ctx.get(irq) == 0
        await pulse(tb, getattr(port.set_status, error))
        assert (await tb.read_reg("ipsr"))[bit] == 1
        await tb.write_reg("ipsr", **{bit: 1})       # status still set: set again at once
        assert (await tb.read_reg("ipsr"))[bit] == 1
        await tb.write_reg(f"{q}csr", **{en: 1, ie: 1, error: 1})
        await tb.write_reg("ipsr", **{bit: 1})
        assert (await tb.read_reg("ipsr"))[bit] == 0
    run(body)


def test_random_garbage_leaves_a_defined_state(seed):
    """Random writes anywhere in the 4 KiB window: every register reads back only
    legal values, unmapped offsets read 0, and every response is OKAY."""
    rng = random.Random(seed)
    mapped = {r.offset + 4 * w for r in REGISTERS for w in range(r.size // 4)}

    async def body(tb):
        for _ in range(120):
            offset = rng.choice(sorted(mapped)) if rng.random() < 0.7 else rng.randrange(0, 4096, 4)
            await tb.write(offset, rng.getrandbits(32), strb=rng.randrange(16))
        for offset in range(0, 4096, 4):
            if offset not in mapped and rng.random() < 0.05:
                assert await tb.read(offset) == 0, offset
        for reg in REGISTERS:
            raw = await tb.read(reg.offset)
            if reg.size == 8:
                raw |= (await tb.read(reg.offset + 4)) << 32
            legal = 0
            for f in reg.fields:
                legal |= f.mask
            assert raw & ~legal == 0, f"{reg.name} has reserved bits set: {raw:#x}"
            fields = reg.decode(raw)
            if reg.name == "ddtp":
                assert fields["iommu_mode"] in (0, 1, 2) and fields["busy"] == 0
            if reg.name.endswith("b") and reg.name[:2] in QUEUES:
                assert fields["log2sz_1"] <= MAX_LOG2SZ_1
        for q, sw in (("cq", "cqt"), ("fq", "fqh"), ("pq", "pqh")):
            size = 1 << ((await tb.read_reg(f"{q}b"))["log2sz_1"] + 1)
            assert (await tb.read_reg(sw))["index"] < size
    run(body)

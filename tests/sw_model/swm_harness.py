"""Small helpers for driving the transaction-level hardware model directly."""

from prifence.formats import (
    DC_BYTES, FUNC3_INVAL_DDT, FUNC3_IOFENCE_C, FUNC3_IOFENCE_PD, FUNC3_PRGR, REG, DdtpMode,
    DeviceContextTc, IofenceCmd, InvalDdtCmd, Opcode, PrgrCmd, codec,
)
from sw_model.tlm import TlmEngine

DDT, CQ, PQ, FQ, STORE = 0x10_000, 0x20_000, 0x40_000, 0x60_000, 0x80_000
TC = codec(DeviceContextTc)
GOOD_TC = TC.pack(v=1, en_ats=1, en_pri=1)


class Sink:
    """A stand-in PCIe function that records the responses it is given."""

    def __init__(self):
        self.responses = []

    def on_prg_response(self, resp):
        self.responses.append(resp)


def req(did=1, **kw):
    base = dict(did=did, pv=1, pid=0x42, priv=0, exec=0, r=1, w=0, l=1, prgi=7, addr=0x123)
    base.update(kw)
    return base


def prgr(did=1, prgi=7, code=0, pv=0, pid=0, **kw):
    return codec(PrgrCmd).pack(opcode=Opcode.ATS, func3=FUNC3_PRGR, rid=did & 0xFFFF,
                               dseg=did >> 16, dsv=1, prgi=prgi, code=code, pv=pv, pid=pid, **kw)


def fence(data, *, pd=False, av=1, wsi=0, addr=STORE, **kw):
    return codec(IofenceCmd).pack(opcode=Opcode.IOFENCE_PD if pd else Opcode.IOFENCE_C,
                                  func3=FUNC3_IOFENCE_PD if pd else FUNC3_IOFENCE_C,
                                  av=av, wsi=wsi, data=data, addr=addr >> 2, **kw)


def inval(did=None, **kw):
    f = dict(opcode=Opcode.IODIR, func3=FUNC3_INVAL_DDT)
    if did is not None:
        f.update(dv=1, did=did)
    f.update(kw)
    return codec(InvalDdtCmd).pack(**f)


class Harness:
    """An engine plus the register sequences a test needs (no driver)."""

    def __init__(self, *, seed=1, mem_latency=(1, 1), **kw):
        self.engine = TlmEngine(seed=seed, jitter_max=0, mem_latency=mem_latency, **kw)
        self.hw = self.engine.hw
        self.mem = self.engine.mem
        self.cqt = 0

    def run(self, coro, until=1_000_000):
        return self.engine.run(coro, until=until)

    async def rd(self, name, word=0):
        return await self.engine.reg_read(REG[name].offset + 4 * word)

    async def wr(self, name, value, word=0, strb=0xF):
        await self.engine.reg_write(REG[name].offset + 4 * word, value, strb)

    async def wr64(self, name, value):
        await self.wr(name, value >> 32, word=1)
        await self.wr(name, value & 0xFFFF_FFFF)

    async def rd64(self, name):
        return await self.rd(name) | (await self.rd(name, 1)) << 32

    async def wait_on(self, name, field, want=1):
        for _ in range(200):
            if REG[name].get(await self.rd(name), field) == want:
                return
        raise AssertionError(f"{name}.{field} never became {want}")

    async def bring_up(self, *, log2sz_1=3, ddtp=True, pq=True, fq=True, dcs=None, cie=1):
        await self.wr64("cqb", REG["cqb"].encode(log2sz_1=log2sz_1, ppn=CQ >> 12))
        await self.wr("cqcsr", REG["cqcsr"].encode(cqen=1, cie=cie))
        await self.wait_on("cqcsr", "cqon")
        if fq:
            await self.wr64("fqb", REG["fqb"].encode(log2sz_1=log2sz_1, ppn=FQ >> 12))
            await self.wr("fqcsr", REG["fqcsr"].encode(fqen=1, fie=1))
            await self.wait_on("fqcsr", "fqon")
        if pq:
            await self.wr64("pqb", REG["pqb"].encode(log2sz_1=log2sz_1, ppn=PQ >> 12))
            await self.wr("pqcsr", REG["pqcsr"].encode(pqen=1, pie=1))
            await self.wait_on("pqcsr", "pqon")
        for did, tc in (dcs or {1: GOOD_TC}).items():
            self.mem.write(DDT + did * DC_BYTES, tc.to_bytes(8, "little"))
        if ddtp:
            await self.wr64("ddtp", REG["ddtp"].encode(iommu_mode=DdtpMode.LVL1, ppn=DDT >> 12))

    async def submit(self, *words):
        for w in words:
            self.mem.write(CQ + self.cqt * 16, w.to_bytes(16, "little"))
            self.cqt = (self.cqt + 1) % self.hw.cq.size
        await self.wr("cqt", self.cqt)

    def store(self, addr=STORE):
        return int.from_bytes(self.mem.read(addr, 4), "little")

    async def settle(self, cycles=200):
        await self.engine.delay(cycles)

"""Simulator speed: one page-request stream bench on Verilator and on Amaranth's simulator.

The bench is the same on both: reset, a 1LVL directory with one good device
context, a 4 Ki-entry PQ, then ``n`` page requests (L=0, so every one becomes
a PQ record) offered back to back on ``page_req`` against a memory that
accepts every beat at once and answers within a cycle or two; it ends when
pqt has published all ``n`` records.  Both report simulated cycles, wall
seconds and cycles per second.

The Verilator side is a cocotb test (memory: cocotbext-axi's ``AxiRam``); the
Amaranth side drives the same ports of :class:`rtl.top.PrifenceTop` from a
Python testbench with an equivalent immediate memory.  The memory models
differ in implementation, so the ratio compares the simulators together with
a comparable per-cycle Python memory model, which is what a user pays.
"""

import json
import os
import time
from collections import deque

from prifence.formats import (
    PAGE_SHIFT, REG, DdtpMode, DeviceContextTc, PageRequest, codec, DC_BYTES,
)

__all__ = ["amaranth_stream", "verilator_stream", "sim_speed", "DID", "DDT_PPN", "PQ_PPN"]

DID = 1
DDT_PPN = 0x10
PQ_PPN = 0x100
PQ_LOG2SZ_1 = 11          # 4 Ki entries
_TC = codec(DeviceContextTc)
_REQ = codec(PageRequest)


def _requests(n):
    for i in range(n):
        yield {"did": DID, "pv": 0, "pid": 0, "priv": 0, "exec": 0, "r": 1, "w": 0, "l": 0,
               "prgi": i % 512, "addr": i}


def _register_writes():
    """(offset, 32-bit value) writes that set the bench up, in order."""
    writes = []
    for name, fields in (("ddtp", dict(iommu_mode=DdtpMode.LVL1, ppn=DDT_PPN)),
                         ("pqb", dict(log2sz_1=PQ_LOG2SZ_1, ppn=PQ_PPN)),
                         ("pqcsr", dict(pqen=1))):
        reg = REG[name]
        value = reg.encode(**fields)
        if reg.size == 8:
            writes.append((reg.offset + 4, value >> 32))
        writes.append((reg.offset, value & 0xFFFF_FFFF))
    return writes


def _good_tc():
    return _TC.pack(v=1, en_ats=1, en_pri=1)


# --- Amaranth's simulator ------------------------------------------------------------

def amaranth_stream(n=300, *, data_width=64):
    """Run the bench on Amaranth's Python simulator; returns a figures dict."""
    from amaranth.sim import Simulator
    from rtl.top import PrifenceTop

    dut = PrifenceTop(data_width=data_width)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    dc_addr = (DDT_PPN << PAGE_SHIFT) + DID * DC_BYTES
    result = {}
    clock = {"cycles": 0}

    async def count_cycles(ctx):
        async for _ in ctx.tick():
            clock["cycles"] += 1

    def port(name):
        return getattr(dut, name)

    async def memory(ctx):
        """Immediate memory: accepts every AW/W/AR beat, answers B and R from queues."""
        ctx.set(port("m_axi_awready"), 1)
        ctx.set(port("m_axi_wready"), 1)
        ctx.set(port("m_axi_arready"), 1)
        writes, bresp, reads = deque(), deque(), deque()
        watched = [port(n) for n in (
            "m_axi_awvalid", "m_axi_awid", "m_axi_wvalid", "m_axi_wlast", "m_axi_bready",
            "m_axi_arvalid", "m_axi_arid", "m_axi_araddr", "m_axi_arlen", "m_axi_rready")]
        async for _, _, awv, awid, wv, wlast, bready, arv, arid, araddr, arlen, rready in \
                ctx.tick().sample(*watched):
            if bresp and bready:          # bvalid was high (we drive it from bresp)
                bresp.popleft()
            if reads and rready:
                reads.popleft()
            if awv:
                writes.append(awid)
            if wv and wlast:
                bresp.append(writes.popleft())
            if arv:
                word = _good_tc() if araddr == dc_addr else 0
                for beat in range(arlen + 1):
                    reads.append((arid, word if beat == 0 else 0, beat == arlen))
            ctx.set(port("m_axi_bvalid"), bool(bresp))
            if bresp:
                ctx.set(port("m_axi_bid"), bresp[0])
                ctx.set(port("m_axi_bresp"), 0)
            ctx.set(port("m_axi_rvalid"), bool(reads))
            if reads:
                rid, data, last = reads[0]
                ctx.set(port("m_axi_rid"), rid)
                ctx.set(port("m_axi_rdata"), data)
                ctx.set(port("m_axi_rlast"), last)
                ctx.set(port("m_axi_rresp"), 0)

    async def axil_write(ctx, offset, value):
        ctx.set(port("s_axil_awaddr"), offset)
        ctx.set(port("s_axil_wdata"), value)
        ctx.set(port("s_axil_wstrb"), 0xF)
        ctx.set(port("s_axil_awvalid"), 1)
        ctx.set(port("s_axil_wvalid"), 1)
        ctx.set(port("s_axil_bready"), 1)
        for _ in range(100):
            await ctx.tick()
            if ctx.get(port("s_axil_bvalid")):
                break
            if not ctx.get(port("s_axil_awready")):
                ctx.set(port("s_axil_awvalid"), 0)
            if not ctx.get(port("s_axil_wready")):
                ctx.set(port("s_axil_wvalid"), 0)
        else:
            raise AssertionError(f"no AXI4-Lite write response at {offset:#x}")
        ctx.set(port("s_axil_awvalid"), 0)
        ctx.set(port("s_axil_wvalid"), 0)
        await ctx.tick()
        ctx.set(port("s_axil_bready"), 0)

    async def axil_read(ctx, offset):
        ctx.set(port("s_axil_araddr"), offset)
        ctx.set(port("s_axil_arvalid"), 1)
        ctx.set(port("s_axil_rready"), 1)
        for _ in range(100):
            await ctx.tick()
            ctx.set(port("s_axil_arvalid"), 0)
            if ctx.get(port("s_axil_rvalid")):
                value = ctx.get(port("s_axil_rdata"))
                await ctx.tick()
                ctx.set(port("s_axil_rready"), 0)
                return value
        raise AssertionError(f"no AXI4-Lite read data at {offset:#x}")

    async def bench(ctx):
        for offset, value in _register_writes():
            await axil_write(ctx, offset, value)
        pending = deque(_requests(n))
        fields = [name for name, _ in PageRequest.as_shape()]
        start_wall, start = time.perf_counter(), clock["cycles"]
        ctx.set(port("prg_resp_ready"), 1)
        while pending:
            req = pending[0]
            for name in fields:
                ctx.set(port(f"page_req_{name}"), req[name])
            ctx.set(port("page_req_valid"), 1)
            _, _, ready = await ctx.tick().sample(port("page_req_ready"))
            if ready:
                pending.popleft()
        ctx.set(port("page_req_valid"), 0)
        pqt = REG["pqt"].offset
        for _ in range(10_000):
            if await axil_read(ctx, pqt) == n % (1 << (PQ_LOG2SZ_1 + 1)):
                break
        else:
            raise AssertionError("pqt did not publish every record")
        wall = time.perf_counter() - start_wall
        cycles = clock["cycles"] - start
        result.update(simulator="amaranth", requests=n, cycles=cycles, wall_s=wall,
                      cycles_per_s=cycles / wall)

    sim.add_process(count_cycles)
    sim.add_process(memory)
    sim.add_testbench(bench)
    sim.run()
    return result


# --- Verilator, under cocotb ------------------------------------------------------------

_RESULT_ENV = "PRIFENCE_SPEED_RESULT"
_COUNT_ENV = "PRIFENCE_SPEED_REQUESTS"

try:
    import cocotb
except ImportError:         # the Amaranth side does not need cocotb
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def stream(dut):
        """The bench on Verilator; writes its figures to $PRIFENCE_SPEED_RESULT."""
        from cocotb.triggers import RisingEdge
        from cocotb_tests.tb import TB, cycles_now
        n = int(os.environ.get(_COUNT_ENV, "300"))
        tb = TB(dut)
        await tb.reset()
        tb.ram.write((DDT_PPN << PAGE_SHIFT) + DID * DC_BYTES,
                     _good_tc().to_bytes(8, "little") + bytes(DC_BYTES - 8))
        for offset, value in _register_writes():
            await tb.write_word(offset, value)
        start_wall, start = time.perf_counter(), cycles_now()
        for req in _requests(n):
            tb.device.send_nowait(**req)
        await tb.device.wait_idle(timeout=20 * n)
        target = n % (1 << (PQ_LOG2SZ_1 + 1))
        while await tb.read_word(REG["pqt"].offset) != target:
            if cycles_now() - start > 40 * n:
                raise AssertionError("pqt did not publish every record")
        wall = time.perf_counter() - start_wall
        cycles = cycles_now() - start
        result = dict(simulator="verilator", requests=n, cycles=cycles, wall_s=wall,
                      cycles_per_s=cycles / wall)
        with open(os.environ[_RESULT_ENV], "w") as out:
            json.dump(result, out)


def verilator_stream(n=300, *, data_width=64):
    """Run the bench on Verilator (cached build); returns a figures dict."""
    import tempfile
    from cocotb_tests.sim import build, run
    sim = build({"data_width": data_width})
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "speed.json")
        outcome = run(sim, "cocotb_tests.sim_speed", ["stream"], seed=1,
                      extra_env={_RESULT_ENV: out, _COUNT_ENV: str(n)})
        if outcome["stream"] is not None:
            raise RuntimeError(f"speed bench failed on Verilator: {outcome['stream']}")
        with open(out) as f:
            return json.load(f)


def sim_speed(n_verilator=2000, n_amaranth=300):
    """Both simulators on the bench; the ratio is of cycles per second."""
    verilator = verilator_stream(n_verilator)
    amaranth = amaranth_stream(n_amaranth)
    return {"verilator": verilator, "amaranth": amaranth,
            "ratio": verilator["cycles_per_s"] / amaranth["cycles_per_s"]}

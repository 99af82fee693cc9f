"""CommandQueue (with the ResponseArbiter) on Amaranth's simulator: DESIGN.md §2–§3.

Each bench drives the queue as a driver would (commands in memory, cqt, cqcsr) and
checks what leaves it: PRG responses, AV stores, invalidations, cqh, status pulses.
"""

import random

import pytest

from prifence.formats import COMMAND_BYTES, DDT_INDEX_BITS, Opcode, ResponseCode
from cq_harness import (
    FENCE, INVAL, PRGR, PD_MOD, RESP, Policy, iofence, inval_ddt, model_command, prgr, run,
)
from rtl.command_queue import STATUS_SET_DELAY, CommandQueue

WIDTHS = pytest.mark.parametrize("data_width", [64, 128])


def numbered(n, code=ResponseCode.SUCCESS):
    """An ATS.PRGR told apart from others by its PRGI."""
    return prgr(did=0x100 + n % 64, prgi=n % 512, code=code)


def expected(*words):
    return [model_command(w).response for w in words]


def last_beat_cycle(env, slot_addr):
    """Cycle of the last R beat of the fetch of the command at ``slot_addr``."""
    cycles = [c for c, a, _ in env.read_beats if slot_addr <= a < slot_addr + COMMAND_BYTES]
    assert cycles, f"command at {slot_addr:#x} was never fetched"
    return cycles[-1]


# --- construction and queue control ---------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(addr_width=12), dict(addr_width="56"), dict(addr_width=65), dict(addr_width=True),
    dict(data_width=32), dict(data_width=256), dict(prefetch_depth=0),
    dict(prefetch_depth=2.5),
])
def test_constructor_rejects_bad_parameters(kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        CommandQueue(**kwargs)


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        CommandQueue(56, 64)


@WIDTHS
def test_enable_zeroes_head_and_disable_waits(data_width):
    async def bench(sw, env):
        assert not sw.on
        sw.ctx.set(sw.sys.enable, 1)
        sw.ctx.set(sw.sys.base_ppn, sw.base_ppn)
        sw.ctx.set(sw.sys.log2sz_1, sw.log2sz_1)
        await sw.tick()
        assert sw.on and sw.head == 0, "cqon is 1 in the cycle after cqen rises"
        sw.post(*(numbered(n) for n in range(5)))
        await sw.wait_idle()
        assert sw.head == 5
        await sw.disable()
        assert sw.head == 5, "cqh keeps its value while the queue is off"
        await sw.enable()
        assert sw.head == 0
        sw.post(numbered(9))
        await sw.wait_idle()
    env = run(bench, data_width=data_width)
    assert env.responses("cmd") == expected(*(numbered(n) for n in range(5)), numbered(9))
    assert [a for _, a, _, _ in env.fetches][-1] == 0x80 << 12, "refetch starts at entry 0"


def test_fetch_addresses_follow_base_and_wrap():
    async def bench(sw, env):
        await sw.enable()
        await sw.submit(*(numbered(n) for n in range(23)))
        await sw.wait_idle()
    env = run(bench, sw_args=dict(base_ppn=0x12345, log2sz_1=1))
    entries = 4
    assert [a for _, a, _, _ in env.fetches] == [
        (0x12345 << 12) + (n % entries) * COMMAND_BYTES for n in range(23)]
    assert env.responses("cmd") == expected(*(numbered(n) for n in range(23)))


def test_nothing_fetched_beyond_cqt():
    async def bench(sw, env):
        await sw.enable()
        sw.post(numbered(0), numbered(1))
        await sw.wait_idle()
        await sw.tick(50)
    env = run(bench)
    assert len(env.fetches) == 2


def test_disable_waits_for_outstanding_fetches():
    async def bench(sw, env):
        await sw.enable()
        sw.post(*(numbered(n) for n in range(4)))
        await sw.wait(lambda: len(env.fetches) == 4, bound=50, what="four fetches")
        sw.ctx.set(sw.sys.enable, 0)
        await sw.tick(5)
        assert sw.on, "cqon stays 1 while fetches are outstanding"
        await sw.wait(lambda: not sw.on, bound=200, what="cqon to drop")
        await sw.tick(20)
    env = run(bench, policy=Policy(read_latency=40))
    off_cycle = [c for c, v in env.on_trace if v == 0][-1]
    assert off_cycle > max(c for c, _, _ in env.read_beats)
    assert env.transfers == [], "commands fetched for a disabled queue are not executed"


# --- ATS.PRGR ---------------------------------------------------------------------------

PRGR_CASES = [
    prgr(did=0x12_3456, prgi=0x1FF, code=ResponseCode.INVALID_REQUEST, pv=1, pid=0xABCDE),
    prgr(did=0x00_0042, prgi=3, code=ResponseCode.SUCCESS),
    prgr(did=0x7F_0001, prgi=4, code=ResponseCode.RESPONSE_FAILURE, dsv=0),   # DSEG ignored
    prgr(did=0x00_0005, prgi=5, code=ResponseCode.SUCCESS, pv=0, pid=0x12345),  # PID dropped
    prgr(did=0x01_0000, prgi=6, code=0x5),                                    # reserved code
    prgr(did=0x00_FFFF, prgi=7, code=0x1, ignored=(1 << 64) - 1),            # ignored bits
]


@WIDTHS
def test_prgr_fields(data_width):
    async def bench(sw, env):
        await sw.enable()
        sw.post(*PRGR_CASES)
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench, data_width=data_width)
    got = env.responses("cmd")
    assert got == expected(*PRGR_CASES)
    assert got[0] == dict(did=0x12_3456, pv=1, pid=0xABCDE, prgi=0x1FF, code=1)
    assert got[2]["did"] == 0x0001 and got[3]["pid"] == 0 and got[4]["code"] == 5
    assert not env.pulses


def test_responses_keep_command_order_under_backpressure(seed):
    autos = [RESP.pack(did=0xAA0000 | n, prgi=n, code=ResponseCode.SUCCESS) for n in range(30)]
    words = [numbered(n, code=n % 2) for n in range(60)]

    async def bench(sw, env):
        env.auto_queue.extend(autos)
        await sw.enable()
        await sw.submit(*words)
        await sw.wait_idle(bound=10_000)
        await sw.wait(lambda: not env.auto_queue and not sw.ctx.get(sw.sys.cq.resp.valid),
                      bound=10_000, what="every response to leave")
    env = run(bench, rng=random.Random(seed), sw_args=dict(log2sz_1=2),
              policy=Policy(sink_stall=0.6, read_latency=3, r_gap=0.3, auto_gap=0.3))
    assert env.responses("cmd") == expected(*words)
    assert env.responses("auto") == [RESP.unpack(a) for a in autos]


# --- IOFENCE.C ---------------------------------------------------------------------------

@WIDTHS
@pytest.mark.parametrize("offset", [0, 4, 8, 12])
def test_fence_av_store_lane(data_width, offset):
    addr = 0x4_0000_1230 + offset

    async def bench(sw, env):
        env.write(addr & ~0xF, 0x1111_2222_3333_4444_5555_6666_7777_8888, 16)
        await sw.enable()
        sw.post(iofence(av=1, wsi=1, data=0xCAFEF00D, addr=addr))
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench, data_width=data_width)
    (st,) = env.stores
    bpb = data_width // 8
    lane = (addr % bpb) // 4
    assert (st.addr, st.size, st.length) == (addr, 2, 0)
    assert st.strb == 0xF << (4 * lane)
    assert (st.data >> (32 * lane)) & 0xFFFF_FFFF == 0xCAFEF00D
    assert env.read(addr, 4) == 0xCAFEF00D
    other = [o for o in range(0, 16, 4) if o != offset]
    before = 0x1111_2222_3333_4444_5555_6666_7777_8888
    for o in other:
        assert env.read((addr & ~0xF) + o, 4) == (before >> (8 * o)) & 0xFFFF_FFFF
    assert env.pulse_cycles("fence_w_ip") == [st.b_cycle + STATUS_SET_DELAY], \
        "fence_w_ip follows the write response by the block's registered status pulse"


@pytest.mark.parametrize("av,wsi", [(0, 0), (0, 1), (1, 0)])
def test_fence_flags(av, wsi):
    async def bench(sw, env):
        await sw.enable()
        sw.post(iofence(av=av, wsi=wsi, pr=1, pw=1, data=7, addr=0x2000))
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench)
    assert len(env.stores) == av
    assert len(env.pulse_cycles("fence_w_ip")) == wsi
    assert env.heads[-1][1] == 1


@pytest.mark.parametrize("av", [0, 1])
def test_fence_waits_for_stalled_responses(av):
    """Three responses held at prg_resp for 400 cycles: the fence's store and cqh wait."""
    words = [numbered(0), numbered(1), numbered(2),
             iofence(av=av, wsi=1, data=0x600D, addr=0x3000), numbered(3)]

    async def bench(sw, env):
        env.sink_blocked = True
        await sw.enable()
        sw.post(*words)
        await sw.tick(400)
        assert sw.head <= 2 and not env.stores and not env.pulses and not env.transfers
        env.sink_blocked = False
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench)
    assert env.responses("cmd") == expected(*words[:3], words[4])
    last_prior = env.transfers[2].cycle
    fence_done = next(c for c, h in env.heads if h == 4)
    assert fence_done - last_prior <= 4, f"fence completed {fence_done - last_prior} cycles late"
    assert env.transfers[3].cycle > fence_done - 1, "a later response passed the fence"
    pulse = env.pulse_cycles("fence_w_ip")
    assert len(pulse) == 1 and pulse[0] >= last_prior
    if av:
        (st,) = env.stores
        assert st.cycle > last_prior and st.b_cycle < fence_done
        assert env.read(0x3000, 4) == 0x600D


@pytest.mark.parametrize("av", [0, 1])
@WIDTHS
def test_fence_without_prior_work_completes_within_8_cycles_of_fetch(av, data_width):
    async def bench(sw, env):
        await sw.enable()
        sw.post(iofence(av=av, wsi=1, addr=0x5000, data=1))
        await sw.wait_idle()
    env = run(bench, data_width=data_width)
    fetched = last_beat_cycle(env, 0x80 << 12)
    done = next(c for c, h in env.heads if h == 1)
    assert done - fetched <= 8, done - fetched


# --- IODIR.INVAL_DDT ---------------------------------------------------------------------

def test_inval_ddt_handshake_orders_later_commands():
    words = [inval_ddt(dv=1, did=0x45), iofence(av=1, data=9, addr=0x100), numbered(1),
             inval_ddt(dv=0, did=0xFF_FFFF), numbered(2)]

    async def bench(sw, env):
        await sw.enable()
        sw.post(*words)
        await sw.wait_idle()
        await sw.tick(40)
    env = run(bench, policy=Policy(inval_delay=25))
    assert [(a, d) for _, a, d in env.invals] == [(0, 0x45), (1, env.invals[1][2])]
    first, second = env.invals[0][0], env.invals[1][0]
    (st,) = env.stores
    assert st.cycle > first, "the fence passed an invalidation still in progress"
    assert env.transfers[0].cycle > first
    assert env.transfers[0].cycle < second < env.transfers[1].cycle
    # cqh moves past INVAL_DDT when it starts, as DESIGN §3 allows.
    assert next(c for c, h in env.heads if h == 1) < first


# --- errors --------------------------------------------------------------------------------

def _lowest_bit(c, name):
    return 1 << c.fields[name][0]


ILLEGAL = {
    "opcode 0": 0,
    "IOTINVAL (opcode 1)": 1,
    "ATS.INVAL (ATS func3 0)": PRGR.pack(opcode=Opcode.ATS, func3=0, prgi=1),
    "IODIR.INVAL_PDT (func3 1)": INVAL.pack(opcode=Opcode.IODIR, func3=1, dv=1),
    "IOFENCE func3 1": FENCE.pack(opcode=Opcode.IOFENCE_C, func3=1),
    "IOFENCE.PD func3 2": FENCE.pack(opcode=Opcode.IOFENCE_PD, func3=2),
    "unknown custom opcode 65": 65,
    "INVAL_DDT with a PID": inval_ddt(dv=1, did=1, pid=1),
    "INVAL_DDT DV=1 with a wide DID": inval_ddt(dv=1, did=1 << DDT_INDEX_BITS),
    "IOFENCE store address beyond 56 bits": iofence(av=1, addr=1 << 56),
    "IOFENCE.PD store address beyond 56 bits, AV=0": iofence(pd=True, addr=1 << 60),
}
for _name, _codec, _base in (
        ("IOFENCE", FENCE, iofence()), ("IOFENCE.PD", FENCE, iofence(pd=True)),
        ("INVAL_DDT", INVAL, inval_ddt(dv=0)), ("ATS.PRGR", PRGR, numbered(0))):
    for _field in _codec.fields:
        if _field.startswith("_rsvd"):
            ILLEGAL[f"{_name} reserved {_field} low bit"] = _base | _lowest_bit(_codec, _field)
            _off, _width = _codec.fields[_field]
            ILLEGAL[f"{_name} reserved {_field} high bit"] = _base | 1 << (_off + _width - 1)


@pytest.mark.parametrize("name", sorted(ILLEGAL))
def test_illegal_command_stops_queue_until_cleared(name):
    bad = ILLEGAL[name]
    assert model_command(bad).kind == "illegal"
    fixed = numbered(7)

    async def bench(sw, env):
        await sw.enable()
        sw.post(numbered(0), bad, numbered(2))
        await sw.wait_status("cmd_ill")
        await sw.tick(2)
        fetches_at_stop = len(env.fetches)
        await sw.tick(60)
        assert sw.head == 1, "cqh stays on the illegal command"
        assert len(env.fetches) == fetches_at_stop, "nothing is fetched while cmd_ill is set"
        assert len(env.transfers) == 1
        sw.write_slot(1, fixed)                 # software repairs the command
        await sw.clear("cmd_ill")
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench)
    assert env.responses("cmd") == expected(numbered(0), fixed, numbered(2))
    assert len(env.pulse_cycles("cmd_ill")) == 1 and not env.pulse_cycles("cqmf")


LEGAL_EDGES = {
    "INVAL_DDT DV=0 ignores a wide DID": inval_ddt(dv=0, did=0xFF_FFFF),
    "INVAL_DDT DV=1 with DID 127": inval_ddt(dv=1, did=(1 << DDT_INDEX_BITS) - 1),
    "IOFENCE at the top of the 56-bit space": iofence(av=1, addr=(1 << 56) - 4, data=3),
    "PRGR with every ignored bit set": prgr(did=1, prgi=1, code=0, ignored=(1 << 64) - 1),
}


@pytest.mark.parametrize("name", sorted(LEGAL_EDGES))
def test_legal_edge_cases_execute(name):
    word = LEGAL_EDGES[name]
    assert model_command(word).kind != "illegal"

    async def bench(sw, env):
        await sw.enable()
        sw.post(word)
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench)
    assert not env.pulses
    assert env.heads[-1][1] == 1
    cmd = model_command(word)
    if cmd.kind == "prgr":
        assert env.responses("cmd") == [cmd.response]
    elif cmd.kind == "inval":
        assert [(a, None if a else d) for _, a, d in env.invals] == [(cmd.all, cmd.did)]
    else:
        assert [(st.addr, st.resp) for st in env.stores] == [(cmd.addr, 0)]


@WIDTHS
def test_fetch_fault_reported_only_when_reached(data_width):
    words = [numbered(0), iofence(wsi=0), numbered(2), numbered(3)]
    repaired = numbered(12)

    async def bench(sw, env):
        faulty = sw.slot_addr(2) + 8          # the upper half of the third command
        env.read_faults.add(faulty)
        env.sink_blocked = True
        await sw.enable()
        sw.post(*words)
        await sw.wait(lambda: any(a <= faulty < a + env.bytes_per_beat and r
                                  for _, a, r in env.read_beats),
                      bound=100, what="the faulty fetch")
        await sw.tick(100)
        assert not env.pulses, "a prefetch fault is not reported before execution reaches it"
        assert sw.head == 1
        env.sink_blocked = False
        await sw.wait_status("cqmf")
        assert sw.head == 2
        env.read_faults.clear()
        sw.write_slot(2, repaired)
        await sw.tick(30)
        assert sw.head == 2 and len(env.transfers) == 1
        await sw.clear("cqmf")
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench, data_width=data_width)
    assert env.responses("cmd") == expected(numbered(0), repaired, numbered(3))
    assert len(env.pulse_cycles("cqmf")) == 1


def test_av_store_fault_then_retry():
    fence = iofence(av=1, wsi=1, data=0xABCD, addr=0x7004)

    async def bench(sw, env):
        env.write_faults.add(0x7004)
        await sw.enable()
        sw.post(numbered(0), fence, numbered(2))
        await sw.wait_status("cqmf")
        await sw.tick(20)
        assert sw.head == 1 and len(env.transfers) == 1 and len(env.stores) == 1
        assert not env.pulse_cycles("fence_w_ip")
        env.write_faults.clear()
        await sw.clear("cqmf")
        await sw.wait_idle()
        await sw.tick(3)
    env = run(bench)
    assert [s.resp for s in env.stores] == [2, 0]
    assert env.read(0x7004, 4) == 0xABCD
    assert len(env.pulse_cycles("fence_w_ip")) == 1
    assert env.pulse_cycles("fence_w_ip")[0] > env.stores[1].b_cycle - 1
    assert env.responses("cmd") == expected(numbered(0), numbered(2))


# --- disable with a fence waiting ------------------------------------------------------------

@pytest.mark.parametrize("pd", [False, True])
def test_disable_abandons_waiting_fence(pd):
    async def bench(sw, env):
        env.sink_blocked = True
        sw.set_pr(accepted=3, retired=0)
        await sw.enable()
        sw.post(numbered(0), iofence(pd=pd, av=1, wsi=1, data=5, addr=0x900))
        await sw.tick(50)
        assert sw.head == 1
        await sw.disable(bound=50)          # nothing of the memory is outstanding
        env.sink_blocked = False
        sw.set_pr(retired=3)
        await sw.tick(60)
        assert sw.head == 1, "cqh stays on the abandoned fence"
        await sw.enable()
        assert sw.head == 0
    env = run(bench)
    assert env.responses("cmd") == expected(numbered(0)), "the response handed over is still sent"
    assert not env.stores and not env.pulses


def test_disable_while_drain_fence_waits_on_page_requests():
    async def bench(sw, env):
        sw.set_pr(accepted=10, retired=4)
        await sw.enable()
        sw.post(iofence(pd=True, wsi=1))
        await sw.tick(40)
        assert sw.head == 0
        await sw.disable(bound=10)
        sw.set_pr(retired=10)
        await sw.tick(40)
    env = run(bench)
    assert not env.pulses and env.heads == [(0, 0)]


# --- IOFENCE.PD --------------------------------------------------------------------------

@pytest.mark.parametrize("accepted,retired_steps", [
    (5, [2, 4, 5]),
    (3, [PD_MOD - 2, PD_MOD - 1, 0, 3]),       # the counters wrap
    (5, [2, 9]),                                # retired passes the snapshot at once
])
def test_drain_fence_waits_for_retirement(accepted, retired_steps):
    async def bench(sw, env):
        sw.set_pr(accepted=accepted, retired=retired_steps[0])
        await sw.enable()
        sw.post(iofence(pd=True, av=1, wsi=1, data=0x77, addr=0xA00))
        for r in retired_steps[1:]:
            await sw.tick(80)
            assert sw.head == 0 and not env.stores and not env.pulses
            sw.set_pr(retired=r)
        await sw.wait_idle(bound=20)
        await sw.tick(3)
    env = run(bench)
    assert len(env.stores) == 1 and len(env.pulse_cycles("fence_w_ip")) == 1
    assert env.read(0xA00, 4) == 0x77


@pytest.mark.parametrize("delta", [-3, -2, -1, 0, 1, 2, 3])
def test_drain_fence_snapshot_races_page_requests(delta):
    """A page request accepted in cycle T + delta - 1 (seen in pr_accepted from T + delta),
    where T is the cycle the last earlier response is accepted: the fence must cover it
    when it was accepted before T (delta <= 0 here covers every acceptance up to T-1),
    and must not wait for it when it arrived after the snapshot (delta >= 1)."""
    release = 60
    base = 100

    def hook(env, ctx):
        ctx.set(env.cq.pr_accepted, base + (env.cycle >= release + delta))

    async def bench(sw, env):
        sw.set_pr(retired=base)
        env.every_cycle(hook)
        env.sink_ready_fn = lambda c: c >= release
        await sw.enable()
        sw.post(numbered(0), iofence(pd=True, wsi=1))
        await sw.tick(release + 20 - env.cycle)
        waiting = sw.head == 1
        sw.set_pr(retired=base + 1)
        await sw.wait_idle(bound=20)
        env.result = waiting
    env = run(bench)
    assert env.transfers[0].cycle == release
    assert env.result == (delta <= 0), (
        f"delta={delta}: fence {'waited' if env.result else 'did not wait'}")


@pytest.mark.parametrize("delta", [-2, -1, 0])
def test_drain_fence_with_no_prior_work_covers_requests_before_cqt(delta):
    """Requests accepted before software moves cqt are covered, with nothing before
    the fence in the queue (pr_accepted changes near the cqt write)."""
    base = 40

    async def bench(sw, env):
        await sw.enable()
        sw.set_pr(accepted=base, retired=base)
        await sw.tick(5)
        post_cycle = env.cycle
        bump = post_cycle + delta

        def hook(env, ctx):
            ctx.set(env.cq.pr_accepted, base + 1 if env.cycle >= bump + 1 else base)
        if delta < 0:
            sw.set_pr(accepted=base + 1)
        env.every_cycle(hook)
        sw.post(iofence(pd=True, wsi=1))
        await sw.tick(60)
        assert sw.head == 0, "the fence completed before a request accepted earlier retired"
        sw.set_pr(retired=base + 1)
        await sw.wait_idle(bound=20)
    run(bench)


# --- throughput -------------------------------------------------------------------------------

@pytest.mark.parametrize("data_width,latency,rate", [(64, 1, 0.5), (64, 8, 0.5), (128, 1, 1.0), (128, 8, 1.0)])
def test_prgr_rate_reaches_memory_bound(data_width, latency, rate):
    n = 120

    async def bench(sw, env):
        await sw.enable()
        sw.post(*(numbered(i) for i in range(n)))
        await sw.wait_idle(bound=2000)
        await sw.tick(2)
    env = run(bench, data_width=data_width, policy=Policy(read_latency=latency),
              sw_args=dict(log2sz_1=7))
    cycles = env.transfers[-1].cycle - env.transfers[0].cycle
    assert len(env.transfers) == n
    assert (n - 1) / cycles >= rate * 0.97, f"{(n - 1) / cycles:.3f} responses per clock"


def test_reenable_after_error_starts_afresh():
    """cmd_ill stops the queue; software turns it off and on (which clears the error
    bits, DESIGN §2) and the ring restarts at entry 0 with new commands."""
    async def bench(sw, env):
        await sw.enable()
        sw.post(numbered(0), 0, numbered(2))
        await sw.wait_status("cmd_ill")
        await sw.disable(bound=50)
        assert sw.head == 1
        await sw.enable()
        assert sw.head == 0 and not sw.status("cmd_ill")
        sw.post(numbered(10), iofence(wsi=1), numbered(11))
        await sw.wait_idle()
    env = run(bench)
    assert env.responses("cmd") == expected(numbered(0), numbered(10), numbered(11))
    assert [n for _, n in env.pulses] == ["cmd_ill", "fence_w_ip"]

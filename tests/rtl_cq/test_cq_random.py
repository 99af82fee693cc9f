"""Randomized bench: commands, page requests and back-pressure against the command model.

One seed draws the configuration (data width, ring size, memory timing), a stream of
commands (PRGRs, both fences with and without AV/WSI, invalidations, illegal
commands, fetch faults, AV-store faults), a page-request path (requests accepted
and retired in arrival order, half of them retired by their auto-response being
accepted on ``prg_resp``) and ``prg_resp`` back-pressure with long stalls.  The
driver repairs each error the way software would and clears it.

What is checked, from the record of every transfer:

* ATS.PRGR responses leave in command order with the model's payload; auto-responses
  leave in their own order; invalidations and AV stores happen in command order with
  the model's fields; fence_w_ip pulses once per WSI fence.
* Every error stops the queue with cqh on the command the model says is bad.
* A fence's AV store and cqh advance never precede the acceptance of an earlier
  response (or an earlier invalidation's handshake); nothing after a fence runs
  before it completes.
* An IOFENCE.PD completes only once every page request accepted before it could be
  executed has retired.
"""

import random

from cq_harness import (
    FENCE, INVAL, PD_MOD, PRGR, RESP, Policy, iofence, inval_ddt, model_command, prgr, run,
)
from prifence.formats import DDT_INDEX_BITS, ResponseCode

STORE_AREA = 0x20_0000
FAULT_AREA = 0x40_0000      # AV stores meant to fault: one 16-byte line per position


def random_legal(rng):
    roll = rng.random()
    if roll < 0.55:
        code = rng.choice([0, 0, 1, 0xF, rng.randrange(16)])
        pv = rng.randrange(2)
        return prgr(did=rng.randrange(1 << 24), prgi=rng.randrange(512), code=code, pv=pv,
                    pid=rng.randrange(1 << 20), dsv=rng.randrange(2),
                    ignored=rng.getrandbits(64))
    if roll < 0.85:
        return iofence(pd=rng.random() < 0.5, av=int(rng.random() < 0.6), wsi=rng.randrange(2),
                       pr=rng.randrange(2), pw=rng.randrange(2), data=rng.getrandbits(32),
                       addr=STORE_AREA + 4 * rng.randrange(256))
    dv = rng.randrange(2)
    did = rng.randrange(1 << DDT_INDEX_BITS) if dv else rng.randrange(1 << 24)
    return inval_ddt(dv=dv, did=did)


def random_illegal(rng):
    legal = random_legal(rng)
    kind = model_command(legal).kind
    codec_ = {"prgr": PRGR, "fence_c": FENCE, "fence_pd": FENCE, "inval": INVAL}[kind]
    reserved = [n for n in codec_.fields if n.startswith("_rsvd")]
    choice = rng.random()
    if choice < 0.5:
        off, width = codec_.fields[rng.choice(reserved)]
        return legal | 1 << (off + rng.randrange(width))
    if choice < 0.7:
        return (legal & ~0x7F) | rng.choice([0, 1, 5, 63, 65, 127])    # unknown opcode
    if choice < 0.85:
        return inval_ddt(dv=1, did=rng.randrange(1 << DDT_INDEX_BITS, 1 << 24))
    return iofence(av=1, addr=rng.randrange(1 << 56, 1 << 64) & ~3)


class PageRequests:
    """The page-request path as the command queue sees it: ``pr_accepted``,
    ``pr_retired`` and the auto-responses offered to the arbiter."""

    def __init__(self, rng, *, start, rate):
        self.rng, self.start, self.rate = rng, start, rate
        self.accepted = 0
        self.disposed = set()
        self.retired = 0
        self.dispose_at = {}
        self.active = True
        self.accepted_hist, self.retired_hist = [], []
        self.seen_transfers = 0
        self.first_cycle = None
        self.auto_ids = []
        self.ingress_depth = 16

    def hook(self, env, ctx):
        rng, now = self.rng, env.cycle
        if self.first_cycle is None:
            self.first_cycle = now
        for t in env.transfers[self.seen_transfers:]:
            if t.source == "auto":
                self.disposed.add(t.payload["did"] & 0xFFFF | (t.payload["prgi"] >> 8) << 16)
        self.seen_transfers = len(env.transfers)
        for rid, due in list(self.dispose_at.items()):
            if due <= now:
                self.disposed.add(rid)
                del self.dispose_at[rid]
        while self.retired in self.disposed:
            self.disposed.discard(self.retired)
            self.retired += 1
        # The ingress FIFO fills while prg_resp is held back: page_req stalls then.
        if self.active and len(env.auto_queue) < self.ingress_depth and rng.random() < self.rate:
            rid = self.accepted
            self.accepted += 1
            if rng.random() < 0.5:
                self.auto_ids.append(rid)
                env.auto_queue.append(RESP.pack(
                    did=0xBB_0000 | (rid & 0xFFFF), prgi=(rid >> 16 & 1) << 8 | (rid & 0xFF),
                    code=rng.choice([ResponseCode.SUCCESS, ResponseCode.INVALID_REQUEST,
                                     ResponseCode.RESPONSE_FAILURE])))
            else:
                self.dispose_at[rid] = now + rng.randrange(1, 60)
        self.accepted_hist.append(self.accepted)
        self.retired_hist.append(self.retired)
        assert len(self.accepted_hist) == now + 1 - self.first_cycle
        ctx.set(env.cq.pr_accepted, (self.start + self.accepted) % PD_MOD)
        ctx.set(env.cq.pr_retired, (self.start + self.retired) % PD_MOD)

    def at(self, hist, cycle):
        return hist[max(0, cycle - self.first_cycle)]


class Sink:
    """prg_resp readiness: random, with occasional stalls of hundreds of cycles."""

    def __init__(self, rng, stall):
        self.rng, self.stall = rng, stall
        self.blocked_until = 0

    def __call__(self, cycle):
        if cycle < self.blocked_until:
            return False
        if self.rng.random() < 0.002:
            self.blocked_until = cycle + self.rng.randrange(100, 400)
            return False
        return self.rng.random() >= self.stall


def test_random_commands_page_requests_backpressure(seed, soak):
    rng = random.Random(seed)
    n_commands = 3000 if soak else 250
    data_width = rng.choice([64, 128])
    log2sz_1 = rng.randrange(1, 5)
    policy = Policy(read_latency=rng.randrange(1, 10), write_latency=rng.randrange(1, 6),
                    r_gap=rng.choice([0, 0.2, 0.5]), ar_stall=rng.choice([0, 0.3]),
                    aw_stall=rng.choice([0, 0.3]), w_stall=rng.choice([0, 0.3]),
                    auto_gap=rng.choice([0, 0.5]), inval_delay=rng.randrange(1, 12))
    print(f"data_width={data_width} log2sz_1={log2sz_1} {policy}")
    env_rng = random.Random(rng.getrandbits(32))
    prs = PageRequests(random.Random(rng.getrandbits(32)),
                       start=rng.choice([0, PD_MOD - 300, rng.randrange(PD_MOD)]),
                       rate=rng.choice([0.05, 0.2, 0.5]))
    sink = Sink(random.Random(rng.getrandbits(32)), stall=rng.choice([0, 0.3, 0.7]))

    program = []          # absolute position -> the command that finally executed there
    faults = {}           # absolute position -> "illegal" | "fetch" | "store"
    post_cycle = {}
    errors_seen = []      # (position, bit)

    async def bench(sw, env):
        env.sink_ready_fn = sink
        env.every_cycle(prs.hook)
        await sw.enable()
        entries = sw.entries
        heads_seen = [1]
        pos = [0]

        def position():
            """Absolute position of cqh (count of commands it moved past)."""
            for _, h in env.heads[heads_seen[0]:]:
                pos[0] += (h - (pos[0] % entries)) % entries
            heads_seen[0] = len(env.heads)
            return pos[0]

        async def service():
            """One cycle of the driver: handle a stopped queue, then tick."""
            for bit in ("cmd_ill", "cqmf"):
                if sw.status(bit):
                    p = position()
                    errors_seen.append((p, bit))
                    kind = faults.pop(p, None)
                    expect = {"illegal": "cmd_ill", "fetch": "cqmf", "store": "cqmf"}.get(kind)
                    assert expect == bit, f"{bit} at position {p} ({kind} expected there)"
                    if kind == "illegal":
                        program[p] = random_legal(rng)
                        sw.write_slot(p, program[p])
                    elif kind == "fetch":
                        env.read_faults.discard(sw.slot_addr(p))
                    else:
                        env.write_faults.discard(FAULT_AREA + 16 * p)
                    await sw.clear(bit)
                    return
            await sw.tick()

        while len(program) < n_commands:
            for _ in range(rng.randrange(1, 7)):
                if len(program) == n_commands:
                    break
                for _ in range(20_000):
                    if (sw.tail + 1) % entries != sw.head:
                        break
                    await service()
                else:
                    raise AssertionError("no room in the command queue for 20000 cycles")
                p = len(program)
                roll = rng.random()
                if roll < 0.05:
                    word, faults[p] = random_illegal(rng), "illegal"
                else:
                    word = random_legal(rng)
                    cmd = model_command(word)
                    if roll < 0.08:
                        faults[p] = "fetch"
                        env.read_faults.add(sw.slot_addr(p))
                    elif roll < 0.12 and cmd.kind.startswith("fence") and cmd.av:
                        faults[p] = "store"
                        fields = FENCE.unpack(word)
                        fields["addr"] = (FAULT_AREA + 16 * p) >> 2
                        word = FENCE.pack(**fields)
                        env.write_faults.add(FAULT_AREA + 16 * p)
                program.append(word)
                post_cycle[p] = env.cycle
                sw.post(word)
            for _ in range(rng.choice([0, 1, 5, 30])):
                await service()
        prs.active = False
        for _ in range(60_000):
            if position() == len(program) and not env.auto_queue and not faults \
                    and not sw.ctx.get(sw.sys.cq.resp.valid) \
                    and not sw.ctx.get(sw.sys.cq.inval.valid):
                break
            await service()
        else:
            raise AssertionError(f"queue did not drain: cqh at {position()} of {len(program)}")
        await sw.tick(5)
        env.final_position = position()

    env = run(bench, rng=env_rng, policy=policy, data_width=data_width,
              sw_args=dict(log2sz_1=log2sz_1), deadline=2_000_000)
    print(f"{env.cycle} cycles, {len(env.transfers)} responses, {len(errors_seen)} errors")
    assert env.final_position == len(program)

    model = [model_command(w) for w in program]
    assert all(m.kind != "illegal" for m in model)

    # completion cycle of each position: first cycle cqh is past it
    entries = 2 << log2sz_1
    done_at, pos = {}, 0
    for cycle, h in env.heads[1:]:
        step = (h - pos % entries) % entries
        for p in range(pos, pos + step):
            done_at[p] = cycle
        pos += step

    prgr_pos = [p for p, m in enumerate(model) if m.kind == "prgr"]
    cmd_transfers = [t for t in env.transfers if t.source == "cmd"]
    assert [t.payload for t in cmd_transfers] == [model[p].response for p in prgr_pos]
    accepted_at = dict(zip(prgr_pos, (t.cycle for t in cmd_transfers)))

    inval_pos = [p for p, m in enumerate(model) if m.kind == "inval"]
    assert [(a, None if a else d) for _, a, d in env.invals] == [
        (model[p].all, model[p].did) for p in inval_pos]
    inval_at = dict(zip(inval_pos, (c for c, _, _ in env.invals)))

    good_stores = [s for s in env.stores if s.resp == 0]
    av_pos = [p for p, m in enumerate(model) if m.kind.startswith("fence") and m.av]
    assert [(s.addr, (s.data >> 32 * ((s.addr % (data_width // 8)) // 4)) & 0xFFFF_FFFF)
            for s in good_stores] == [(model[p].addr, model[p].data) for p in av_pos]
    store_of = dict(zip(av_pos, good_stores))
    wsi = sum(1 for m in model if m.kind.startswith("fence") and m.wsi)
    assert len(env.pulse_cycles("fence_w_ip")) == wsi

    auto = env.responses("auto")
    assert [(a["did"] & 0xFFFF) | (a["prgi"] >> 8) << 16 for a in auto] == prs.auto_ids

    last_prior = -1          # latest completion among the commands before p
    last_fence = -1          # cycle the latest fence before p completed (popped)
    for p, m in enumerate(model):
        if m.kind.startswith("fence"):
            done = done_at[p]
            assert last_prior < done, f"fence at {p} completed before an earlier command"
            if m.av:
                st = store_of[p]
                assert st.cycle >= last_prior and st.b_cycle < done, \
                    f"fence at {p}: store at {st.cycle}, earlier work done at {last_prior}"
            if m.kind == "fence_pd":
                snapshot_no_earlier_than = max(post_cycle[p] - 1, last_prior)
                need = prs.at(prs.accepted_hist, snapshot_no_earlier_than)
                have = prs.at(prs.retired_hist, done - 1)
                assert have >= need, (f"IOFENCE.PD at {p} completed in cycle {done} with "
                                      f"{have} retired of {need} accepted before it")
            last_fence = done - 1
            last_prior = max(last_prior, last_fence)
        else:
            # PRGR and INVAL_DDT start in order but need not wait for earlier
            # completions; nothing passes a fence.
            t = accepted_at[p] if m.kind == "prgr" else inval_at[p]
            assert t > last_fence, f"{m.kind} at {p} (cycle {t}) passed the fence done at {last_fence}"
            last_prior = max(last_prior, t)

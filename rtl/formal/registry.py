"""The list of proofs (see :class:`rtl.formal.Proof`)."""

from . import Proof, defects
from .command_queue_properties import CommandQueueProperties, make_block as make_cq
from .context_lookup_properties import ContextLookupProperties, make_block as make_lookup
from .page_request_queue_properties import PageRequestQueueProperties, make_block as make_pq
from .registers_properties import RegisterFileProperties
from .response_arbiter_properties import ResponseArbiterProperties
from rtl.registers import RegisterFile
from rtl.response_arbiter import ResponseArbiter

__all__ = ["PROOFS"]


def _pq(check):
    return lambda block: PageRequestQueueProperties(check=check, block=block)


def _cq(check):
    return lambda block: CommandQueueProperties(check=check, block=block)


_PQ_WHY = ("BMC from reset: the ingress FIFO, context lookup, retire ring and record "
           "FIFOs need many auxiliary invariants for induction; 16 cycles take several "
           "requests through lookup, write, acknowledgement and publication")
_CQ_WHY = ("BMC from reset: the prefetch buffer and fetch counters need auxiliary "
           "invariants for induction; 16 cycles fetch and execute several commands "
           "of a 2- or 4-entry ring")

PROOFS = (
    Proof(name="pq_order",
          statement="PQ records are written, and published (pqt), in arrival order",
          harness=_pq("pq_order"), method="bmc", depth=20,
          why=_PQ_WHY.replace("16 cycles", "20 cycles"),
          defect="every second record write carries the previous record's data",
          broken=lambda: defects.pq_stale_record(make_pq)),
    Proof(name="pq_no_overwrite",
          statement="a PQ record never goes onto an unconsumed record or one still being written",
          harness=_pq("pq_no_overwrite"), method="bmc", depth=16, why=_PQ_WHY,
          defect="every record goes to entry 0",
          broken=lambda: defects.pq_fixed_slot(make_pq), fast=True),
    Proof(name="pq_publish_acked",
          statement="pqt never covers a record whose write is unacknowledged (or faulted)",
          harness=_pq("pq_publish_acked"), method="bmc", depth=16, why=_PQ_WHY,
          defect="a record write counts as acknowledged when its address is accepted",
          broken=lambda: defects.pq_ack_at_issue(make_pq)),
    Proof(name="pq_stopped_no_write",
          statement="with pqmf or pqof set (or pqen 0) nothing is written",
          harness=_pq("pq_stopped_no_write"), method="bmc", depth=20,
          why=_PQ_WHY.replace("16 cycles", "20 cycles (the registered decision stages "
                              "take four more cycles to reach a stopped-queue write)"),
          defect="pqmf and pqof are ignored",
          broken=lambda: defects.pq_ignores_stop_bits(make_pq)),
    Proof(name="pq_auto_response",
          statement="every L=1 request not queued gets exactly one auto-response, with the "
                    "code of DESIGN §4; others get none",
          harness=_pq("pq_auto_response"), method="bmc", depth=14, cover_depth=20,
          why=_PQ_WHY.replace("16 cycles", "14 cycles (the solver time triples per step "
                              "beyond: 16 steps take 7 minutes)")
              + "; the case of a request answered after its record was published is first "
                "reached at step 16, so it is covered (cover depth 20) but not checked by this "
                "bound",
          defect="each auto-response is sent twice",
          broken=lambda: defects.repeat_response(make_pq)),
    Proof(name="fence_c_after_prgr",
          statement="IOFENCE.C/.PD completes (cqh past it, AV store, fence_w_ip) only after "
                    "every earlier ATS.PRGR response was accepted",
          harness=_cq("fence_c_after_prgr"), method="bmc", depth=16, why=_CQ_WHY,
          defect="a one-entry buffer after resp (acceptance seen too early)",
          broken=lambda: defects.cq_buffered_response(make_cq), fast=True),
    Proof(name="fence_pd_drain",
          statement="IOFENCE.PD completes only after every earlier-accepted page request retired",
          harness=_cq("fence_pd_drain"), method="bmc", depth=16, why=_CQ_WHY,
          defect="pr_retired compared off by one",
          broken=lambda: defects.cq_retired_off_by_one(make_cq)),
    Proof(name="cq_error_stop",
          statement="cmd_ill / cqmf stop the CQ with cqh on the culprit; nothing after it executes",
          harness=_cq("cq_error_stop"), method="bmc", depth=16, why=_CQ_WHY,
          defect="cqh moves past the culprit",
          broken=lambda: defects.cq_head_leaves_culprit(make_cq)),
    Proof(name="inval_before_fence",
          statement="after IODIR.INVAL_DDT nothing later executes, and no fence completes, "
                    "before the invalidation handshake",
          harness=_cq("inval_before_fence"), method="bmc", depth=16, why=_CQ_WHY,
          defect="the invalidation is seen done before the lookup took it",
          broken=lambda: defects.cq_inval_not_awaited(make_cq)),
    Proof(name="inval_lookup",
          statement="after an invalidation no request uses the old device context",
          harness=lambda block: ContextLookupProperties(block=block), method="bmc", depth=16,
          why="BMC from reset: plain k-induction (depth 12) does not close, its induction "
              "trace starts from unreachable bookkeeping (read counts against the "
              "lookup's miss state); 16 cycles take several misses, hits and invalidations",
          defect="invalidations are acknowledged and ignored",
          broken=lambda: defects.lookup_ignores_inval(make_lookup), fast=True),
    Proof(name="prg_resp_exact",
          statement="the prg_resp arbiter holds nothing: a response is accepted by its source "
                    "exactly when it leaves on prg_resp, one source at a time",
          harness=lambda block: ResponseArbiterProperties(check="exact", block=block),
          method="prove", depth=2, cover_depth=8,
          why="k-induction closes at once (the properties are combinational in the state)",
          defect="the command input is told ready whenever prg_resp is ready",
          broken=lambda: defects.arbiter_accepts_both(ResponseArbiter), fast=True),
    Proof(name="prg_resp_fair",
          statement="prg_resp is round-robin (a waiting source waits for at most one transfer "
                    "of the other) and keeps a stalled payload",
          harness=lambda block: ResponseArbiterProperties(check="fair", block=block),
          method="bmc", depth=20,
          why="BMC: plain k-induction fails from states where a stalled output's input is "
              "not the preferred one (unreachable; an internal invariant); 20 cycles",
          defect="the command input is served only while no auto-response waits",
          broken=lambda: defects.arbiter_prefers_auto(ResponseArbiter), fast=True),
    Proof(name="regs_queue_contract",
          statement="the register file gives each queue engine what the engine proofs "
                    "assume: xqen changes only when not busy, base fixed while enabled or on, "
                    "index inside the ring, error bits cleared on enable, a set wins",
          harness=lambda block: RegisterFileProperties(block=block), method="bmc", depth=20,
          why="BMC from reset: k-induction fails only on the index-in-ring assertion, "
              "from states where the registered index mask disagrees with LOG2SZ-1 "
              "(an internal invariant); 20 cycles hold several writes to every register",
          defect="the command queue is never seen busy",
          broken=lambda: defects.registers_ignore_busy(RegisterFile), fast=True),
)

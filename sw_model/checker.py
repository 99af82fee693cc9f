"""The checker: every invariant of DESIGN.md §7, on every run.

:class:`Checker` is the :class:`~sw_model.engine.Observer` of a run.  It
follows the run through the hook calls of the engine's hardware side, the
driver and the devices, and raises a :class:`~sw_model.engine.Violation`
(invariant, seed, cycle, objects) at the first broken invariant:

1. every finished group is answered exactly once unless RF came first
   (checked on Reset, on release of the fault parameters, after PRI-off, and
   at the end of the run by :meth:`Checker.final`);
2. no response matches no outstanding group (UPRGI), none is delivered
   twice (a response computed for one group reaching another of the same
   user);
3. ``report_device_fault`` is never called for a device whose fault
   parameters were released, nor, even after they are allocated again,
   with the record of a request accepted before that release;
4. no response computed for a PASID's previous user reaches its next user
   (groups carry their PASID epoch; ``ATS.PRGR`` commands are matched in CQ
   order to responses on ``prg_resp``);
5. no fault handler runs on a freed domain;
6. hardware: PQ records published in arrival order and only once their
   memory holds them, no unconsumed record overwritten, ``IOFENCE.C`` only
   after every earlier ``ATS.PRGR``'s response, ``IOFENCE.PD`` only after
   every request accepted before its cqt write retired, a CQ error with cqh
   on the failing command and no command executed until software clears it;
7. no PRG response code other than 0x0, 0x1, 0xF.

How responses are attributed: the hardware names the source of each
``prg_resp`` (``("auto", seq)`` for an auto-response to accepted request
``seq``, ``("prgr", n)`` for the n-th ``ATS.PRGR`` executed); a PRGR is
attributed through the driver group it was written for (its L=1 record's
PQ serial → the accepted request → the device group that sent it).
"""

from prifence.formats import (
    PQ_RECORD_BYTES, REG, IofenceCmd, Opcode, ResponseCode, codec,
)

from .engine import Observer, Violation

__all__ = ["Checker"]

_VALID_CODES = {int(c) for c in ResponseCode}
_FENCE = codec(IofenceCmd)
_CQCSR = REG["cqcsr"].offset


class Checker(Observer):
    """Observer enforcing DESIGN §7 (see the module docstring).

    ``bind(engine)`` before the run; ``peek(addr, n)`` (optional) reads memory
    without side effects, for the PQ publication check."""

    def __init__(self):
        self.engine = None
        self.peek = None
        self.devices = {}
        self.seq_tag = {}            # accepted seq -> device group (None: stop marker)
        self.accepted = 0
        self.disposed = set()
        self.retired = 0
        self.published = []          # PQ publication order: serial -> seq
        self.last_published_seq = -1
        self.prgr_groups = []        # ATS.PRGR in CQ order -> driver group
        self.prgr_delivered = 0
        self.fences = {}             # AV data -> fence facts
        self.unstamped = []          # fences written, their cqt write not seen yet
        self.released = set()        # devices whose fault parameters are released
        self.reported = set()        # device groups whose L=1 record reached the driver
        self.answer_written = set()  # device groups an ATS.PRGR was written for
        self.limbo = []              # (group, what) lost unless their record turns up (then: 3)
        self.release_mark = {}       # did -> requests accepted when its parameters were last released
        self.freed = set()           # domains the driver freed
        self.cq_error_at = None
        self.current = None
        self.counts = {"responses": 0, "auto": 0, "prgr": 0, "fences_checked": 0, "records": 0}

    def bind(self, engine, *, peek=None):
        self.engine = engine
        self.peek = peek

    def add_device(self, device):
        self.devices[device.did] = device

    def fail(self, invariant, message, *objects):
        if self.engine is not None:
            raise self.engine.violation(invariant, message, objects)
        raise Violation(invariant, message, objects=objects)

    # --- retirement as the checker sees it ------------------------------------------
    def _dispose(self, seq):
        self.disposed.add(seq)
        while self.retired in self.disposed:
            self.disposed.discard(self.retired)
            self.retired += 1

    # --- hardware side -------------------------------------------------------------
    def page_request_accepted(self, seq, req, tag):
        if seq != self.accepted:
            self.fail(6, f"page request accepted as #{seq}, expected #{self.accepted}", req)
        self.accepted += 1
        self.seq_tag[seq] = tag

    def pq_write_issued(self, seq, slot, state):
        pq = state.pq
        if pq.mf or pq.of:
            self.fail(6, f"PQ record of request #{seq} written while "
                         f"{'pqmf' if pq.mf else 'pqof'} is set (the queue must stop)",
                      self.seq_tag.get(seq))
        used = (pq.t - pq.h) % pq.size
        if (slot - pq.h) % pq.size < used:
            self.fail(6, f"PQ record of request #{seq} written to slot {slot}, which holds an "
                         f"unconsumed record (pqh {pq.h}, pqt {pq.t})", self.seq_tag.get(seq))

    def pq_published(self, seq, addr, record):
        if seq <= self.last_published_seq:
            self.fail(6, f"PQ record of request #{seq} published after that of #{self.last_published_seq}",
                      self.seq_tag.get(seq))
        self.last_published_seq = seq
        if self.peek is not None:
            held = self.peek(addr, PQ_RECORD_BYTES)
            if int.from_bytes(held, "little") != record:
                self.fail(6, f"pqt published the record of request #{seq} at {addr:#x} before memory held it",
                          self.seq_tag.get(seq))
        self.published.append(seq)
        self.counts["records"] += 1
        self._dispose(seq)

    def request_dropped(self, seq):
        self._dispose(seq)

    def prg_response(self, resp, source):
        self.counts["responses"] += 1
        if resp["code"] not in _VALID_CODES:
            self.fail(7, f"PRG response with reserved code {resp['code']:#x}", resp)
        kind, n = source
        computed_for = None
        if kind == "auto":
            self.counts["auto"] += 1
            computed_for = self.seq_tag.get(n)
            self._dispose(n)
        else:
            self.counts["prgr"] += 1
            self.prgr_delivered += 1
            if n < len(self.prgr_groups):
                computed_for = self._device_group_of(self.prgr_groups[n])
        self.current = (resp, source, computed_for)

    def _device_group_of(self, driver_group):
        if driver_group is None:
            return None
        serial = driver_group.events[-1].serial
        if serial >= len(self.published):
            return None
        return self.seq_tag.get(self.published[serial])

    def command_executed(self, index, fields, state):
        if self.cq_error_at is not None:
            self.fail(6, f"command {index} executed while the CQ error at {self.cq_error_at} is set",
                      fields)

    def cq_error(self, kind, index, cqh):
        if cqh != index:
            self.fail(6, f"{kind} set for command {index} with cqh at {cqh}",
                      {"error": kind, "command": index, "cqh": cqh})
        self.cq_error_at = index

    def register_write(self, offset, value):
        # The CQ may run again once software clears the error bits (W1C) or
        # turns the queue off (re-enabling clears them).
        if offset == _CQCSR and self.cq_error_at is not None:
            f = REG["cqcsr"].decode(value)
            if f["cmd_ill"] or f["cqmf"] or not f["cqen"]:
                self.cq_error_at = None

    def fence_completed(self, index, kind, fields):
        fence = self.fences.pop(fields["data"], None) if fields["av"] else None
        if fence is None:
            return
        self.counts["fences_checked"] += 1
        kind = fence["kind"]          # what the driver wrote, not what the hardware says
        what = {"fence": kind, "cq_index": index, "data": fields["data"]}
        if self.prgr_delivered < fence["prgr_before"]:
            unsent = self.prgr_groups[self.prgr_delivered:fence["prgr_before"]]
            self.fail(6, f"{kind} completed with {self.prgr_delivered} ATS.PRGR responses sent, "
                         f"{fence['prgr_before']} written before it", what, *unsent[:3])
        if kind == "iofence_pd" and fence["accepted"] is not None and self.retired < fence["accepted"]:
            oldest = {"request": self.retired, "group": self.seq_tag.get(self.retired)}
            self.fail(6, f"IOFENCE.PD completed with {self.retired} requests retired, "
                         f"{fence['accepted']} accepted before its cqt write", what, oldest)

    # --- driver side ---------------------------------------------------------------
    def cq_written(self, serial, cmd, group):
        f = _FENCE.unpack(cmd)
        if f["opcode"] == Opcode.ATS:
            self.prgr_groups.append(group)
            answered = self._device_group_of(group)
            if answered is not None:
                self.answer_written.add(answered)
        elif f["opcode"] in (Opcode.IOFENCE_C, Opcode.IOFENCE_PD) and f["av"]:
            fence = {"prgr_before": len(self.prgr_groups), "accepted": None,
                     "kind": "iofence_pd" if f["opcode"] == Opcode.IOFENCE_PD else "iofence_c"}
            self.fences[f["data"]] = fence
            self.unstamped.append(fence)

    def cqt_written(self, cqt, serial):
        for fence in self.unstamped:
            fence["accepted"] = self.accepted
        self.unstamped.clear()

    def fault_reported(self, did, record, serial, param):
        seq = self.published[serial] if serial < len(self.published) else None
        if seq is not None and record["l"]:
            group = self.seq_tag.get(seq)
            if group is not None:
                self.reported.add(group)
        mark = self.release_mark.get(did)
        if seq is not None and mark is not None and seq < mark:
            self.fail(3, f"report_device_fault for device {did:#x} with a record of request #{seq}, "
                         f"accepted before its fault parameters were released (the drain missed it)",
                      record, self.seq_tag.get(seq))
        if param is None or did in self.released:
            self.fail(3, f"report_device_fault for device {did:#x} "
                         + ("after its fault parameters were released" if did in self.released
                            else "which has no fault parameters"), record)

    def params_allocated(self, did):
        self.released.discard(did)

    def params_released(self, did, param):
        self.released.add(did)
        self.release_mark[did] = self.accepted
        device = self.devices.get(did)
        if device is None or device.rf:
            return
        self._lost(device.outstanding_finished(), f"fault parameters of {device.name} released")

    def _lost(self, groups, what, *, reset=False):
        """Groups outstanding at a release or Reset.  One the driver was told
        about is lost now (1) if no response was written for it, or, on a Reset
        (the device forgets it), even if one was written but not yet sent.  A
        response written before a release still arrives (the final check wants
        it delivered).  A group whose record has not reached the driver yet
        waits in limbo: if its record is reported later, the drain missed it
        (3, the root cause); if not, :meth:`final` reports it lost (1)."""
        lost = [g for g in groups if g in self.reported and (reset or g not in self.answer_written)]
        if lost:
            self.fail(1, f"{what} with groups outstanding (lost groups)", *lost)
        self.limbo.extend((g, what) for g in groups if g not in self.reported)

    def handler_running(self, domain, group, phase):
        if domain in self.freed:
            self.fail(5, f"fault handler of {domain.name} runs ({phase}) after the domain was freed",
                      domain, group)

    def domain_freed(self, domain):
        self.freed.add(domain)

    def pri_off_done(self, did, stopped):
        device = self.devices.get(did)
        if not stopped:
            lost = device.outstanding_finished() if device is not None else ()
            self.fail(1, f"device {did:#x} is not Stopped after PRI off (unanswered groups)", *lost)

    # --- device side ---------------------------------------------------------------
    def response_delivered(self, device, resp, group, outcome):
        current = self.current
        computed_for = current[2] if current is not None and current[0] == resp else None
        if outcome == "uprgi":
            self.fail(2, f"{device.name} got a response matching no outstanding group (UPRGI)",
                      resp, computed_for)
        if group is None or computed_for is None or computed_for is group:
            return
        if computed_for.device is device and computed_for.pv and group.pv \
                and computed_for.pid == group.pid and computed_for.epoch != group.epoch:
            self.fail(4, f"response computed for PASID {group.pid:#x} epoch {computed_for.epoch} "
                         f"reached its next user (epoch {group.epoch})", resp, computed_for, group)
        self.fail(2, f"response computed for {computed_for!r} was delivered to {group!r} "
                     "(answered twice)", resp, computed_for, group)

    def device_reset(self, device, lost):
        self._lost(lost, f"{device.name} Reset", reset=True)

    def final(self):
        """End of run: every device's finished groups are answered (or RF)."""
        if self.limbo:
            group, what = self.limbo[0]
            self.fail(1, f"{what} with groups outstanding, never reported (lost groups)",
                      *(g for g, _ in self.limbo))
        for device in self.devices.values():
            if not device.rf and device.outstanding_finished():
                self.fail(1, f"{device.name} ends the run with unanswered groups",
                          *device.outstanding_finished())

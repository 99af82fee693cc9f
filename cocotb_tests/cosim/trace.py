"""A run's trace: every hook call of the driver, the devices and the hardware,
stamped with its cycle, for counter-examples and timeline pictures.

Pure Python (no cocotb): the transaction-level engine is traced the same way.

:class:`Trace` holds the events ``(cycle, kind, fields)``.
:class:`TracingObserver` sits between an engine and the checker: it records
each :class:`~sw_model.engine.Observer` call and forwards it unchanged.
:func:`traced_policy` wraps a driver class so that its DESIGN §6 steps appear
in the trace (start and end of each, with the device and PASID they act on).

Event kinds (``fields``):

``request``     a page request accepted on ``page_req`` (seq, did, pv, pid, prgi, l, stop)
``pq_record``   a PQ record published (seq, did, pv, pid, prgi, l, slot)
``dropped``     a request dropped silently (seq)
``response``    a PRG response on ``prg_resp`` (did, pv, pid, prgi, code, source)
``command``     a command written by the driver (serial, op, did, pv, pid, prgi, code)
``fence``       a fence completed (its AV data)
``fence_state`` pqt when a fence's AV store reached memory (RTL)
``fq_record``   an FQ record's first doubleword as written (RTL)
``cpu_write``   the driver's own memory write (addr, data hex)
``cq_error``    cmd_ill / cqmf (kind, index)
``step``        a driver step starting or ending (name, phase, did, key)
``device``      a device event (what, did, ...)
``reg_write``   a register write (offset, value)
``violation``   the broken invariant (invariant, message)
"""

import functools

from prifence.formats import IofenceCmd, Opcode, PrgrCmd, codec, is_stop_marker

__all__ = ["Trace", "TracingObserver", "traced_policy", "STEPS", "event_to_text",
           "violation_fields"]

_PRGR = codec(PrgrCmd)
_FENCE = codec(IofenceCmd)
_OPS = {int(Opcode.IOFENCE_C): "IOFENCE.C", int(Opcode.IOFENCE_PD): "IOFENCE.PD",
        int(Opcode.IODIR): "IODIR.INVAL_DDT", int(Opcode.ATS): "ATS.PRGR"}

#: The driver steps (DESIGN §6) recorded by :func:`traced_policy`.
STEPS = ("pri_on", "pri_off", "drain_page_requests", "fence_responses",
         "invalidate_device_context", "respond_pending", "page_response", "free_domain",
         "replace_domain", "pasid_teardown", "recover_device", "flush_work_queue")


class Trace:
    """The events of one run, in the order they happened."""

    def __init__(self, clock):
        self._clock = clock
        self.events = []

    def add(self, kind, **fields):
        self.events.append((self._clock(), kind, fields))

    def tail(self, n=25, kinds=None):
        """The last ``n`` events (of ``kinds``, if given)."""
        chosen = [e for e in self.events if kinds is None or e[1] in kinds]
        return chosen[-n:]

    def as_json(self):
        return [[c, k, f] for c, k, f in self.events]


def violation_fields(v):
    """The trace fields of Violation ``v``: invariant, message, and the device
    groups involved (did, pv, pid, prgi) so a picture can mark them."""
    groups = []
    for obj in v.objects:
        device = getattr(obj, "device", None)
        if device is not None and hasattr(obj, "prgi"):
            groups.append({"did": device.did, "pv": int(obj.pv), "pid": obj.pid, "prgi": obj.prgi})
    return {"invariant": v.invariant, "message": v.message, "groups": groups}


def event_to_text(event):
    """One line describing a trace event."""
    cycle, kind, f = event
    who = ""
    if "did" in f:
        who = f" dev {f['did']:#x}" + (f" pasid {f['pid']:#x}" if f.get("pv") else "")
    rest = ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("did", "pv", "pid"))
    return f"cycle {cycle:>7}  {kind:<10}{who}  {rest}"


class TracingObserver:
    """Records every observer hook into ``trace`` and forwards it to ``inner``
    (normally the :class:`~sw_model.checker.Checker`); a Violation raised by
    ``inner`` propagates unchanged."""

    def __init__(self, inner, trace):
        self.inner = inner
        self.trace = trace

    def __getattr__(self, name):
        # Hooks not recorded below are forwarded as they are.
        return getattr(self.inner, name)

    # --- hardware side -----------------------------------------------------------
    def page_request_accepted(self, seq, req, tag):
        self.trace.add("request", seq=seq, did=req["did"], pv=req["pv"], pid=req["pid"],
                       prgi=req["prgi"], l=req["l"], r=req["r"], w=req["w"], priv=req["priv"],
                       exec=req["exec"], addr=req["addr"],
                       stop=int(is_stop_marker(req["pv"], req["l"], req["r"], req["w"])))
        return self.inner.page_request_accepted(seq, req, tag)

    def pq_write_issued(self, seq, slot, state):
        return self.inner.pq_write_issued(seq, slot, state)

    def pq_published(self, seq, addr, record):
        from prifence.formats import PqRecord
        r = codec(PqRecord).unpack(record)
        self.trace.add("pq_record", seq=seq, did=r["did"], pv=r["pv"], pid=r["pid"],
                       prgi=r["prgi"], l=r["l"], addr=hex(addr))
        return self.inner.pq_published(seq, addr, record)

    def request_dropped(self, seq):
        self.trace.add("dropped", seq=seq)
        return self.inner.request_dropped(seq)

    def prg_response(self, resp, source):
        self.trace.add("response", did=resp["did"], pv=resp["pv"], pid=resp["pid"],
                       prgi=resp["prgi"], code=resp["code"], source=f"{source[0]}#{source[1]}")
        return self.inner.prg_response(resp, source)

    def fence_completed(self, index, kind, fields):
        self.trace.add("fence", data=fields.get("data"))
        return self.inner.fence_completed(index, kind, fields)

    def cq_error(self, kind, index, cqh):
        self.trace.add("cq_error", what=kind, index=index)
        return self.inner.cq_error(kind, index, cqh)

    def register_write(self, offset, value):
        self.trace.add("reg_write", offset=offset, value=value)
        return self.inner.register_write(offset, value)

    # --- driver side -----------------------------------------------------------------
    def cq_written(self, serial, cmd, group):
        op = cmd & 0x7F
        name = _OPS.get(op, f"opcode {op:#x}")
        if op == Opcode.ATS:
            f = _PRGR.unpack(cmd)
            did = (f["dseg"] << 16 | f["rid"]) if f["dsv"] else f["rid"]
            self.trace.add("command", serial=serial, op=name, did=did, pv=f["pv"], pid=f["pid"],
                           prgi=f["prgi"], code=f["code"])
        elif op in (Opcode.IOFENCE_C, Opcode.IOFENCE_PD):
            self.trace.add("command", serial=serial, op=name, data=_FENCE.get(cmd, "data"))
        else:
            self.trace.add("command", serial=serial, op=name)
        return self.inner.cq_written(serial, cmd, group)

    def fault_reported(self, did, record, serial, param):
        self.trace.add("reported", did=did, pv=record["pv"], pid=record["pid"],
                       prgi=record["prgi"], l=record["l"], serial=serial)
        return self.inner.fault_reported(did, record, serial, param)

    def params_allocated(self, did):
        self.trace.add("step", name="params_allocated", phase="-", did=did)
        return self.inner.params_allocated(did)

    def params_released(self, did, param):
        self.trace.add("step", name="params_released", phase="-", did=did)
        return self.inner.params_released(did, param)

    def domain_freed(self, domain):
        self.trace.add("step", name="domain_freed", phase="-", domain=domain.name)
        return self.inner.domain_freed(domain)

    def pri_off_done(self, did, stopped):
        self.trace.add("step", name="pri_off_checked", phase="-", did=did, stopped=bool(stopped))
        return self.inner.pri_off_done(did, stopped)

    # --- device side ---------------------------------------------------------------
    def group_finished(self, device, group):
        self.trace.add("device", what="group_finished", did=device.did, pv=group.pv,
                       pid=group.pid, prgi=group.prgi, group=group.serial)
        return self.inner.group_finished(device, group)

    def response_delivered(self, device, resp, group, outcome):
        self.trace.add("device", what=f"response {outcome}", did=device.did, pv=resp["pv"],
                       pid=resp["pid"], prgi=resp["prgi"],
                       group=None if group is None else group.serial)
        return self.inner.response_delivered(device, resp, group, outcome)

    def device_reset(self, device, lost):
        self.trace.add("device", what="reset", did=device.did, lost=len(lost))
        return self.inner.device_reset(device, lost)

    def pasid_reassigned(self, device, pid, epoch):
        self.trace.add("device", what="pasid_reassigned", did=device.did, pv=1, pid=pid, epoch=epoch)
        return self.inner.pasid_reassigned(device, pid, epoch)


def _step_args(name, args):
    """(did, key) a step acts on, from its positional arguments."""
    did = key = None
    if name in ("pri_on", "pri_off", "invalidate_device_context", "recover_device"):
        did = args[0] if args else None
    elif name in ("replace_domain", "pasid_teardown"):
        did, key = (args + (None, None))[:2]
    elif name == "respond_pending" and args:
        did = getattr(args[0], "did", None)
    elif name == "page_response" and args:
        group = args[0]
        did = getattr(getattr(group, "param", None), "did", None)
        key = getattr(group, "key", None)
    return did, key


def traced_policy(policy_cls):
    """A subclass of driver class ``policy_cls`` whose :data:`STEPS` record
    their start and end in ``engine.trace`` (when the engine has one); the
    steps themselves are the class's own, unchanged."""

    def wrap(name):
        original = getattr(policy_cls, name)

        @functools.wraps(original)
        async def step(self, *args, **kwargs):
            trace = getattr(self.engine, "trace", None)
            if trace is None:
                return await original(self, *args, **kwargs)
            did, key = _step_args(name, args)
            fields = {"name": name}
            if did is not None:
                fields["did"] = did
            if key is not None:
                fields["pv"], fields["pid"] = 1, key
            trace.add("step", phase="start", **fields)
            result = await original(self, *args, **kwargs)
            trace.add("step", phase="end", **fields)
            return result
        return step

    namespace = {name: wrap(name) for name in STEPS if hasattr(policy_cls, name)}
    namespace["name"] = getattr(policy_cls, "name", policy_cls.__name__)
    namespace["__doc__"] = policy_cls.__doc__
    return type(policy_cls.__name__, (policy_cls,), namespace)

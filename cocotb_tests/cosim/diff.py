"""RTL against the transaction-level model on the same stimulus.

A scenario run on the RTL (:func:`~cocotb_tests.cosim.run.run_rtl` with the
full trace) records everything software and the devices did to the
hardware, with its cycle: register writes, the driver's own memory writes
(commands, device contexts), the page requests accepted on ``page_req``, and
the scenario's memory-fault windows.  :func:`replay_on_tlm` feeds that
stimulus, at the same cycles, into :class:`sw_model.tlm.Hardware`, and
:func:`first_divergence` compares what the two produced:

* the PQ records published, in order;
* the FQ records written (first doubleword), in order;
* the PRG responses, per source (auto-responses in request order,
  ``ATS.PRGR`` responses in command order);
* the fences completed, in order; pqt at each completion is shown beside
  them but not compared (it depends on the memory's timing: requests
  accepted after the fence's snapshot may or may not be published yet).

Response timing differs between the two (the TLM's memory latencies are
not the RAM model's), so where a disposition depends on timing (a full PQ,
a fence racing a request) a divergence is real information, not always a bug.
"""

from prifence.formats import FQ_RECORD_BYTES, PqRecord, codec
from sw_model.engine import Observer
from sw_model.tlm import Hardware, TlmEngine

__all__ = ["replay_on_tlm", "rtl_outputs", "first_divergence", "STREAMS", "COMPARED"]

STREAMS = ("PQ records", "FQ records", "auto-responses", "ATS.PRGR responses", "fences",
           "pqt at fence completion")
#: The streams whose first divergence is reported.
COMPARED = STREAMS[:-1]
_PQ = codec(PqRecord)
_REQ_KEYS = ("did", "pv", "pid", "priv", "exec", "r", "w", "l", "prgi", "addr")


def _empty():
    return {name: [] for name in STREAMS}


def rtl_outputs(events):
    """The output streams of an RTL run, from its trace."""
    out = _empty()
    for cycle, kind, f in events:
        if kind == "pq_record":
            out["PQ records"].append((cycle, (f["did"], f["pv"], f["pid"], f["prgi"], f["l"])))
        elif kind == "fq_record":
            out["FQ records"].append((cycle, f["dw0"]))
        elif kind == "response":
            stream = "auto-responses" if f["source"].startswith("auto") else "ATS.PRGR responses"
            out[stream].append((cycle, (f["did"], f["pv"], f["pid"], f["prgi"], f["code"])))
        elif kind == "fence_state":
            out["fences"].append((cycle, f["data"]))
            out["pqt at fence completion"].append((cycle, (f["data"], f["pqt"])))
    return out


class _Recorder(Observer):
    def __init__(self, out):
        self.out = out
        self.hw = None

    def pq_published(self, seq, addr, record):
        r = _PQ.unpack(record)
        self.out["PQ records"].append((self.hw.sched.now, (r["did"], r["pv"], r["pid"], r["prgi"], r["l"])))

    def prg_response(self, resp, source):
        stream = "auto-responses" if source[0] == "auto" else "ATS.PRGR responses"
        self.out[stream].append((self.hw.sched.now, (resp["did"], resp["pv"], resp["pid"],
                                                     resp["prgi"], resp["code"])))

    def fence_completed(self, index, kind, fields):
        if fields.get("av"):
            self.out["fences"].append((self.hw.sched.now, fields["data"]))
            self.out["pqt at fence completion"].append((self.hw.sched.now,
                                                        (fields["data"], self.hw.pq.t)))


class _RecordingHardware(Hardware):
    """The TLM hardware, recording each FQ record it writes."""

    def _fq_write(self, req, cause):
        before = self.fq.t
        super()._fq_write(req, cause)
        if self.fq.t != before:
            addr = self.fq.addr(before)
            dw0 = int.from_bytes(self.mem.read(addr, FQ_RECORD_BYTES)[:8], "little")
            self.engine.observer.out["FQ records"].append((self.sched.now, hex(dw0)))


def replay_on_tlm(events, faults, *, seed, drain=5000):
    """Feed the stimulus of an RTL trace into the transaction-level hardware at
    the same cycles; returns its output streams."""
    out = _empty()
    recorder = _Recorder(out)
    engine = TlmEngine(seed=seed, observer=recorder, hardware_cls=_RecordingHardware)
    hw = recorder.hw = engine.hw
    for lo, hi, kind, start, end in faults:
        engine.mem.inject_fault(lo, hi, kind=kind, start=start, end=end)
    writes = [(c, k, f) for c, k, f in events if k in ("reg_write", "cpu_write")]
    requests = [(c, {k: f[k] for k in _REQ_KEYS}) for c, k, f in events if k == "request"]
    last = max([c for c, _, _ in events] or [0])

    async def apply_writes():
        for cycle, kind, f in writes:
            if cycle > engine.now():
                await engine.delay(cycle - engine.now())
            if kind == "reg_write":
                hw.reg_write(f["offset"], f["value"])
            else:
                engine.mem.write(f["addr"], bytes.fromhex(f["data"]))

    async def offer_requests():
        for cycle, req in requests:
            if cycle > engine.now():
                await engine.delay(cycle - engine.now())
            await hw.accept(req)

    async def main():
        engine.spawn(apply_writes(), "replay.writes")
        engine.spawn(offer_requests(), "replay.requests")
        await engine.delay(last + drain)

    engine.run(main(), until=last + drain + 1)
    return out


def first_divergence(rtl, tlm):
    """The first difference between two output-stream sets: None, or
    ``(stream, index, rtl_item, tlm_item)`` where an item is ``(cycle,
    value)`` or None when one stream ended; the stream whose divergence comes
    earliest on the RTL's clock is reported."""
    found = []
    for name in COMPARED:
        a, b = rtl[name], tlm[name]
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            if x is None or y is None or x[1] != y[1]:
                when = (x or y)[0]
                found.append((when, name, i, x, y))
                break
    if not found:
        return None
    _, name, i, x, y = min(found, key=lambda d: d[0])
    return name, i, x, y

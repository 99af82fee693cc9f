"""Page-request disposition: the reference model of DESIGN.md §4.

A pure function from a page request and the state the hardware sees when the
request leaves its ingress FIFO (ddtp mode, the device context, the PQ status)
to what the hardware does with it: write a PQ record, send an auto-response,
record an FQ cause, set ``pqof``.  The RTL benches and the transaction-level
model (:mod:`sw_model.tlm`) both use it, so there is one reading of the table.

The row ``pq_store_fault`` is not chosen by :func:`decide`: a store fault is
known only after a record decided ``queued`` has been written.  The response
the hardware owes such a request (and any later record discarded with it) is
:func:`store_fault_response`.
"""

from dataclasses import dataclass

from prifence.formats import (
    DDT_INDEX_BITS, IOTVAL_PAGE_REQUEST, TTYP_PAGE_REQUEST, Cause, DdtpMode,
    DeviceContextTc, FqRecord, PageRequest, PqRecord, ResponseCode, codec,
    dc_misconfigured, is_stop_marker,
)

__all__ = ["ROWS", "Disposition", "decide", "store_fault_response", "pq_record",
           "fq_record", "check_request", "auto_response"]

#: The rows of DESIGN §4, top to bottom.
ROWS = ("ddtp_off", "ddtp_bare", "did_too_wide", "dc_load_fault", "dc_invalid",
        "dc_misconfigured", "pri_disabled", "pq_off", "pq_overflow", "pq_store_fault",
        "queued")

_REQ = codec(PageRequest)
_TC = codec(DeviceContextTc)
_PQ = codec(PqRecord)
_FQ = codec(FqRecord)


@dataclass(frozen=True)
class Disposition:
    """What the hardware does with one page request (one row of DESIGN §4).

    row
        One of :data:`ROWS`, the first row of §4 that matched.
    write_record
        The request is written to the PQ (the ``otherwise`` row).
    response
        PrgResponse fields ``{did, pv, pid, prgi, code}`` of the auto-response,
        or ``None`` (L=0, Stop Marker, or a row without response).
    fq_cause
        FQ cause to record, or ``None`` (no FQ record; DTF=1 suppresses cause
        260 of the ``pri_disabled`` row).
    set_pqof
        The row sets ``pqof`` (overflow already set, or the queue is full).
    """
    row: str
    write_record: bool
    response: dict | None
    fq_cause: int | None
    set_pqof: bool


_REQ_LIMITS = tuple((name, 1 << _REQ.fields[name][1]) for name in _REQ.public)


def check_request(req):
    """Raise a clear error unless ``req`` holds every PageRequest field, each in range."""
    if not isinstance(req, dict):
        raise TypeError(f"a page request must be a dict of PageRequest fields, not {req!r}")
    try:
        for name, limit in _REQ_LIMITS:
            value = req[name]
            if not 0 <= value < limit:
                raise ValueError(f"page request field {name}={value:#x} does not fit in "
                                 f"{limit.bit_length() - 1} bits")
    except KeyError:
        missing = [name for name in _REQ.public if name not in req]
        raise KeyError(f"page request {req!r} lacks field(s) {', '.join(missing)}") from None


def _tc_fields(dc_tc):
    if not isinstance(dc_tc, int) or dc_tc < 0 or dc_tc >> _TC.width:
        raise TypeError(f"dc_tc must be a 64-bit device-context dw0, not {dc_tc!r}")
    return _TC.unpack(dc_tc)


def auto_response(req, code, *, prpr):
    """The auto-response to ``req`` with ``code``, or ``None`` if none is owed.

    Only an L=1 request that is not a Stop Marker is answered.  The PASID is
    carried iff the request had one and (``code`` is Response Failure or
    ``prpr``)."""
    if not req["l"] or is_stop_marker(req["pv"], req["l"], req["r"], req["w"]):
        return None
    code = ResponseCode(code)
    pv = int(bool(req["pv"]) and (code == ResponseCode.RESPONSE_FAILURE or bool(prpr)))
    return {"did": req["did"], "pv": pv, "pid": req["pid"] if pv else 0,
            "prgi": req["prgi"], "code": int(code)}


def decide(req, *, ddtp_mode, dc_tc, dc_load_fault, pq_on, pq_mf, pq_of, pq_full):
    """Decide one page request by DESIGN §4 (first matching row wins).

    Parameters
    ----------
    req : dict
        PageRequest fields ``did, pv, pid, priv, exec, r, w, l, prgi, addr``.
    ddtp_mode : int
        ``ddtp.iommu_mode`` (:class:`~prifence.formats.DdtpMode`).
    dc_tc : int or None
        The device context's dw0 as read (``None`` when no context was read:
        ddtp Off/Bare, device_id too wide, or load fault).
    dc_load_fault : bool
        Reading the context's dw0 faulted.
    pq_on : bool
        ``pqen`` and ``pqon`` are both 1.
    pq_mf, pq_of : bool
        ``pqmf`` / ``pqof`` are set.
    pq_full : bool
        The PQ is full (tail == head-1, counting records issued but not acknowledged).
    """
    check_request(req)
    try:
        mode = DdtpMode(ddtp_mode)
    except ValueError:
        raise ValueError(f"ddtp_mode must be a DdtpMode (0, 1 or 2), not {ddtp_mode!r}") from None

    def row(name, code=None, cause=None, *, prpr=False, write=False, pqof=False):
        response = None if code is None else auto_response(req, code, prpr=prpr)
        return Disposition(name, write, response, None if cause is None else int(cause), pqof)

    RF, INV, OK = ResponseCode.RESPONSE_FAILURE, ResponseCode.INVALID_REQUEST, ResponseCode.SUCCESS
    if mode == DdtpMode.OFF:
        return row("ddtp_off", RF, Cause.ALL_INBOUND_DISALLOWED)
    if mode == DdtpMode.BARE:
        return row("ddtp_bare", INV, Cause.TRANSACTION_TYPE_DISALLOWED)
    if req["did"] >> DDT_INDEX_BITS:
        return row("did_too_wide", INV, Cause.TRANSACTION_TYPE_DISALLOWED)
    if dc_load_fault:
        return row("dc_load_fault", RF, Cause.DDT_LOAD_FAULT)
    tc = _tc_fields(dc_tc)
    if not tc["v"]:
        return row("dc_invalid", RF, Cause.DDT_INVALID)
    if dc_misconfigured(dc_tc):
        return row("dc_misconfigured", RF, Cause.DDT_MISCONFIGURED)
    prpr = bool(tc["prpr"])
    if not tc["en_ats"] or not tc["en_pri"]:
        cause = None if tc["dtf"] else Cause.TRANSACTION_TYPE_DISALLOWED
        return row("pri_disabled", INV, cause, prpr=prpr)
    if not pq_on or pq_mf:
        return row("pq_off", RF, prpr=prpr)
    if pq_of or pq_full:
        return row("pq_overflow", OK, prpr=prpr, pqof=True)
    return row("queued", prpr=prpr, write=True)


def store_fault_response(req, *, dc_tc):
    """The auto-response owed to a request whose PQ record store faulted, or
    that was discarded after an earlier record's store fault (Response Failure,
    PASID carried iff the request had one); ``None`` for L=0 and Stop Markers."""
    check_request(req)
    prpr = bool(_tc_fields(dc_tc)["prpr"])
    return auto_response(req, ResponseCode.RESPONSE_FAILURE, prpr=prpr)


def pq_record(req):
    """The 128-bit PQ record the hardware writes for ``req`` (PV=0 forces PID,
    PRIV and EXEC to 0)."""
    check_request(req)
    pv = req["pv"]
    return _PQ.pack(pid=req["pid"] if pv else 0, pv=pv, priv=req["priv"] if pv else 0,
                    exec=req["exec"] if pv else 0, did=req["did"], r=req["r"], w=req["w"],
                    l=req["l"], prgi=req["prgi"], addr=req["addr"])


def fq_record(req, cause):
    """The 256-bit FQ record of ``req`` with ``cause`` (TTYP 9, iotval 0x04; PV=0
    forces PID and PRIV to 0)."""
    check_request(req)
    pv = req["pv"]
    return _FQ.pack(cause=int(Cause(cause)), pid=req["pid"] if pv else 0, pv=pv,
                    priv=req["priv"] if pv else 0, ttyp=TTYP_PAGE_REQUEST, did=req["did"],
                    iotval=IOTVAL_PAGE_REQUEST)

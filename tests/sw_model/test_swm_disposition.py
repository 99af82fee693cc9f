"""Every row of DESIGN §4, the PASID rule of the auto-response, and the record encodings."""

import random

import pytest

from prifence.formats import (
    Cause, DdtpMode, DeviceContextTc, FqRecord, PqRecord, ResponseCode, codec,
)
from sw_model.disposition import (
    ROWS, decide, fq_record, pq_record, store_fault_response,
)

TC = codec(DeviceContextTc)
GOOD_TC = TC.pack(v=1, en_ats=1, en_pri=1)
GOOD_TC_PRPR = TC.pack(v=1, en_ats=1, en_pri=1, prpr=1)
RF, INV, OK = (int(ResponseCode.RESPONSE_FAILURE), int(ResponseCode.INVALID_REQUEST),
               int(ResponseCode.SUCCESS))


def req(**kw):
    base = dict(did=5, pv=1, pid=0x1234, priv=1, exec=1, r=1, w=0, l=1, prgi=0x1AB,
                addr=0xABCDE)
    base.update(kw)
    return base


def ok_state(**kw):
    state = dict(ddtp_mode=DdtpMode.LVL1, dc_tc=GOOD_TC, dc_load_fault=False, pq_on=True,
                 pq_mf=False, pq_of=False, pq_full=False)
    state.update(kw)
    return state


# (row, state overrides, request overrides, response code, FQ cause, pqof)
CASES = [
    ("ddtp_off", dict(ddtp_mode=DdtpMode.OFF, dc_tc=None), {}, RF, Cause.ALL_INBOUND_DISALLOWED, False),
    ("ddtp_bare", dict(ddtp_mode=DdtpMode.BARE, dc_tc=None), {}, INV, Cause.TRANSACTION_TYPE_DISALLOWED, False),
    ("did_too_wide", dict(dc_tc=None), dict(did=1 << 7), INV, Cause.TRANSACTION_TYPE_DISALLOWED, False),
    ("did_too_wide", dict(dc_tc=None), dict(did=1 << 23), INV, Cause.TRANSACTION_TYPE_DISALLOWED, False),
    ("dc_load_fault", dict(dc_tc=None, dc_load_fault=True), {}, RF, Cause.DDT_LOAD_FAULT, False),
    ("dc_invalid", dict(dc_tc=TC.pack(v=0, en_ats=1, en_pri=1)), {}, RF, Cause.DDT_INVALID, False),
    ("dc_misconfigured", dict(dc_tc=TC.pack(v=1, en_pri=1)), {}, RF, Cause.DDT_MISCONFIGURED, False),
    ("dc_misconfigured", dict(dc_tc=TC.pack(v=1, en_ats=1, en_pri=1, sxl=1)), {}, RF, Cause.DDT_MISCONFIGURED, False),
    ("dc_misconfigured", dict(dc_tc=GOOD_TC | (1 << 40)), {}, RF, Cause.DDT_MISCONFIGURED, False),
    ("pri_disabled", dict(dc_tc=TC.pack(v=1, en_ats=1)), {}, INV, Cause.TRANSACTION_TYPE_DISALLOWED, False),
    ("pri_disabled", dict(dc_tc=TC.pack(v=1)), {}, INV, Cause.TRANSACTION_TYPE_DISALLOWED, False),
    ("pri_disabled", dict(dc_tc=TC.pack(v=1, en_ats=1, dtf=1)), {}, INV, None, False),
    ("pq_off", dict(pq_on=False), {}, RF, None, False),
    ("pq_off", dict(pq_mf=True), {}, RF, None, False),
    ("pq_off", dict(pq_mf=True, pq_full=True, pq_of=True), {}, RF, None, False),
    ("pq_overflow", dict(pq_of=True), {}, OK, None, True),
    ("pq_overflow", dict(pq_full=True), {}, OK, None, True),
    ("queued", {}, {}, None, None, False),
]


@pytest.mark.parametrize("row,state,reqkw,code,cause,pqof", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_row(row, state, reqkw, code, cause, pqof):
    r = req(**reqkw)
    d = decide(r, **ok_state(**state))
    assert d.row == row
    assert d.write_record == (row == "queued")
    assert d.fq_cause == (None if cause is None else int(cause))
    assert d.set_pqof == pqof
    if code is None:
        assert d.response is None
    else:
        assert d.response["code"] == code
        assert d.response["did"] == r["did"] and d.response["prgi"] == r["prgi"]


def test_rows_are_top_down():
    """An earlier row wins over a later one that also matches."""
    everything_wrong = ok_state(ddtp_mode=DdtpMode.OFF, dc_tc=None, dc_load_fault=True,
                                pq_on=False, pq_mf=True, pq_of=True, pq_full=True)
    assert decide(req(did=1 << 9), **everything_wrong).row == "ddtp_off"
    assert decide(req(), **ok_state(dc_tc=TC.pack(v=0, en_pri=1), pq_on=False)).row == "dc_invalid"
    assert decide(req(), **ok_state(dc_tc=TC.pack(v=1, en_ats=1), pq_of=True)).row == "pri_disabled"


@pytest.mark.parametrize("kind", ["l0", "stop_marker"])
def test_no_response_but_fq_and_pqof_for_l0_and_stop_markers(kind):
    r = req(l=0) if kind == "l0" else req(r=0, w=0, l=1)
    d = decide(r, **ok_state(ddtp_mode=DdtpMode.OFF, dc_tc=None))
    assert d.response is None and d.fq_cause == Cause.ALL_INBOUND_DISALLOWED
    d = decide(r, **ok_state(pq_full=True))
    assert d.response is None and d.set_pqof and d.row == "pq_overflow"
    d = decide(r, **ok_state(pq_on=False))
    assert d.response is None and d.row == "pq_off"
    assert decide(r, **ok_state()).write_record


def test_pv0_l1_no_rw_is_not_a_stop_marker():
    d = decide(req(pv=0, pid=0, priv=0, exec=0, r=0, w=0), **ok_state(pq_on=False))
    assert d.response == {"did": 5, "pv": 0, "pid": 0, "prgi": 0x1AB, "code": RF}


def test_pasid_rule():
    r = req()
    # Response Failure always carries the PASID of a request that had one.
    d = decide(r, **ok_state(pq_on=False))
    assert (d.response["pv"], d.response["pid"]) == (1, 0x1234)
    # Success / Invalid carry it only with PRPR=1.
    d = decide(r, **ok_state(pq_full=True))
    assert (d.response["pv"], d.response["pid"]) == (0, 0)
    d = decide(r, **ok_state(pq_full=True, dc_tc=GOOD_TC_PRPR))
    assert (d.response["pv"], d.response["pid"]) == (1, 0x1234)
    # No usable context: PRPR counts 0.
    d = decide(r, **ok_state(ddtp_mode=DdtpMode.BARE, dc_tc=None))
    assert d.response["pv"] == 0
    d = decide(r, **ok_state(dc_tc=TC.pack(v=1, en_ats=1, prpr=1)))   # misconfigured
    assert d.row == "dc_misconfigured" and d.response["pv"] == 1      # RF carries it anyway
    # A request without PASID never gets one.
    d = decide(req(pv=0, pid=0), **ok_state(pq_on=False, dc_tc=GOOD_TC_PRPR))
    assert (d.response["pv"], d.response["pid"]) == (0, 0)


def test_store_fault_response():
    assert store_fault_response(req(), dc_tc=GOOD_TC) == {
        "did": 5, "pv": 1, "pid": 0x1234, "prgi": 0x1AB, "code": RF}
    assert store_fault_response(req(pv=0, pid=0), dc_tc=GOOD_TC_PRPR)["pv"] == 0
    assert store_fault_response(req(l=0), dc_tc=GOOD_TC) is None
    assert store_fault_response(req(r=0, w=0), dc_tc=GOOD_TC) is None


def test_pq_record_encoding():
    pq = codec(PqRecord)
    f = pq.unpack(pq_record(req()))
    assert f == dict(pid=0x1234, pv=1, priv=1, exec=1, did=5, r=1, w=0, l=1, prgi=0x1AB,
                     addr=0xABCDE)
    f = pq.unpack(pq_record(req(pv=0)))
    assert (f["pid"], f["priv"], f["exec"], f["pv"]) == (0, 0, 0, 0)
    word = pq_record(req(did=0xFFFFFF, addr=(1 << 52) - 1))
    assert word >> 64 >> 12 == (1 << 52) - 1 and (word >> 40) & 0xFFFFFF == 0xFFFFFF
    assert pq.reserved_bits(pq_record(req())) == 0


def test_fq_record_encoding():
    fq = codec(FqRecord)
    f = fq.unpack(fq_record(req(), Cause.DDT_INVALID))
    assert f == dict(cause=258, pid=0x1234, pv=1, priv=1, ttyp=9, did=5, iotval=4)
    f = fq.unpack(fq_record(req(pv=0), Cause.DDT_INVALID))
    assert (f["pid"], f["priv"]) == (0, 0)


def test_bad_input_is_rejected():
    with pytest.raises(KeyError, match="prgi"):
        decide({k: v for k, v in req().items() if k != "prgi"}, **ok_state())
    with pytest.raises(ValueError, match="prgi"):
        decide(req(prgi=512), **ok_state())
    with pytest.raises(ValueError, match="ddtp_mode"):
        decide(req(), **ok_state(ddtp_mode=7))
    with pytest.raises(TypeError, match="dc_tc"):
        decide(req(), **ok_state(dc_tc=None))


def test_random_requests_match_a_direct_reading(seed):
    """Random states against an independent, straight reading of the table."""
    rng = random.Random(seed)
    seen = set()
    for _ in range(3000):
        r = req(did=rng.choice([rng.randrange(128), rng.randrange(1 << 24)]), pv=rng.randrange(2),
                pid=rng.randrange(1 << 20), r=rng.randrange(2), w=rng.randrange(2), l=rng.randrange(2))
        st = dict(ddtp_mode=rng.choice([0, 1, 2, 2, 2, 2]), dc_load_fault=rng.random() < 0.1,
                  dc_tc=rng.choice([GOOD_TC, GOOD_TC_PRPR, rng.randrange(1 << 12), GOOD_TC | (1 << 4)]),
                  pq_on=rng.random() < 0.9, pq_mf=rng.random() < 0.1, pq_of=rng.random() < 0.1,
                  pq_full=rng.random() < 0.1)
        d = decide(r, **st)
        seen.add(d.row)
        tc = TC.unpack(st["dc_tc"])
        usable = st["ddtp_mode"] == 2 and r["did"] < 128 and not st["dc_load_fault"]
        if d.set_pqof:
            assert d.row == "pq_overflow" and (st["pq_of"] or st["pq_full"])
        if d.row == "queued":
            assert usable and st["pq_on"] and not (st["pq_mf"] or st["pq_of"] or st["pq_full"])
        answered = r["l"] and not (r["pv"] and r["l"] and not r["r"] and not r["w"])
        assert (d.response is not None) == (bool(answered) and d.row != "queued")
        if d.response and d.response["pv"]:
            assert r["pv"] and (d.response["code"] == RF or (usable and tc["prpr"]))
    assert {"ddtp_off", "ddtp_bare", "queued", "pq_off"} <= seen

"""Internal interfaces between the hardware blocks of prifence.

These signatures are the seams of the design: every block is a
:class:`wiring.Component` whose ports are built from them, and the top level
(``rtl/top.py``) only connects them.

Memory client ports
    Each block that touches memory owns one *read* and/or one *write* client
    port, a cut-down AXI4 without IDs: the memory master (``rtl/axi_master.py``)
    gives every client port its own AXI ID, so a client sees its own responses
    in the order it issued its requests, and it never sees another client's.
    ``len`` is beats-1 (bursts are at most 4 beats), ``size`` is log2 of the
    bytes per beat.  Any ``resp`` other than 0 (OKAY) is a memory fault.
    A client must keep ``r.ready`` / ``b.ready`` high while it has requests
    outstanding (the master does not buffer responses).

Queue register ports
    :class:`QueueRegsSignature` is what the register file gives each queue
    engine (PQ, FQ, CQ): the software-written fields, the current values of the
    queue's status bits, and the engine's outputs back (its hardware-owned
    index, ``on``, one-cycle *set* pulses for status bits, and ``notify``, a
    pulse per published record that sets the queue's interrupt-pending bit).
"""

from amaranth.hdl import Cat, Const, Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "AXI_OKAY", "AXI_SLVERR", "AXI_DECERR",
    "MemReadSignature", "MemWriteSignature", "QueueRegsSignature",
    "InvalidateSignature", "PD_COUNT_WIDTH", "AxiLiteSignature", "AxiSignature",
    "AXI_ID_WIDTH", "queue_mask",
]

AXI_OKAY = 0
AXI_SLVERR = 2
AXI_DECERR = 3

#: Width of the page-request accepted/retired counters used by IOFENCE.PD
#: (compared modulo 2**width; far more than can ever be in flight).
PD_COUNT_WIDTH = 16


def _addr_cmd(addr_width):
    return data.StructLayout({"addr": addr_width, "len": 2, "size": 3})


class MemReadSignature(wiring.Signature):
    """A read client port, seen from the client: ``ar`` out, ``r`` in."""

    def __init__(self, *, addr_width=56, data_width=64):
        if not isinstance(addr_width, int) or addr_width <= 12:
            raise TypeError(f"addr_width must be an integer above 12, not {addr_width!r}")
        if data_width not in (64, 128):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        self.addr_width, self.data_width = addr_width, data_width
        super().__init__({
            "ar": Out(stream.Signature(_addr_cmd(addr_width))),
            "r": In(stream.Signature(data.StructLayout(
                {"data": data_width, "resp": 2, "last": 1}))),
        })


class MemWriteSignature(wiring.Signature):
    """A write client port, seen from the client: ``aw`` and ``w`` out, ``b`` in.

    The ``w`` beats of a burst follow its ``aw`` (a client may present ``w``
    before ``aw`` is accepted; the master keeps AXI's ordering)."""

    def __init__(self, *, addr_width=56, data_width=64):
        if not isinstance(addr_width, int) or addr_width <= 12:
            raise TypeError(f"addr_width must be an integer above 12, not {addr_width!r}")
        if data_width not in (64, 128):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        self.addr_width, self.data_width = addr_width, data_width
        super().__init__({
            "aw": Out(stream.Signature(_addr_cmd(addr_width))),
            "w": Out(stream.Signature(data.StructLayout(
                {"data": data_width, "strb": data_width // 8, "last": 1}))),
            "b": In(stream.Signature(data.StructLayout({"resp": 2}))),
        })


class QueueRegsSignature(wiring.Signature):
    """The register-file side of one queue, seen from the queue engine.

    Parameters
    ----------
    status : tuple of str
        The names of the queue's W1C status bits, e.g. ``("pqmf", "pqof")``.

    Members
    -------
    enable : In(1)        xqen.
    base_ppn : In(44)     xqb.PPN.
    log2sz_1 : In(5)      xqb.LOG2SZ-1 (already clamped to 15).
    sw_index : In(32)     the software-owned index (cqt, fqh or pqh), masked to
                          the queue size by the register file.
    status : In(layout)   the current status bits.
    hw_index : Out(32)    the hardware-owned index (cqh, fqt or pqt).
    on : Out(1)           xqon.
    set_status : Out(layout)   one-cycle pulses that set status bits.
    notify : Out(1)       one-cycle pulse: a record was published (sets the
                          interrupt-pending bit when the interrupt enable is 1).
    """

    def __init__(self, status):
        status = tuple(status)
        if not all(isinstance(s, str) for s in status):
            raise TypeError(f"status must be a tuple of names, not {status!r}")
        self.status_names = status
        layout = data.StructLayout({name: 1 for name in status})
        super().__init__({
            "enable": In(1),
            "base_ppn": In(44),
            "log2sz_1": In(5),
            "sw_index": In(32),
            "status": In(layout),
            "hw_index": Out(32),
            "on": Out(1),
            "set_status": Out(layout),
            "notify": Out(1),
        })


class InvalidateSignature(wiring.Signature):
    """Device-context invalidation, seen from the command queue (the requester).

    The command queue holds ``valid`` with ``all`` (DV=0) or ``did`` (DV=1);
    the context lookup raises ``ready`` in the cycle it has removed every
    covered cached context and marked every covered in-flight context read so
    that it will not fill the cache.  A request looked up after that cycle
    reads the context from memory."""

    def __init__(self):
        super().__init__({
            "valid": Out(1),
            "all": Out(1),
            "did": Out(7),
            "ready": In(1),
        })


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite slave port (32-bit data), seen from the slave.

    Member names are the AXI channel signal names in lower case, so the top
    level can expose them as ``s_axil_<name>`` by iterating the members."""

    def __init__(self, *, addr_width=12):
        super().__init__({
            "awaddr": In(addr_width), "awprot": In(3), "awvalid": In(1), "awready": Out(1),
            "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
            "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
            "araddr": In(addr_width), "arprot": In(3), "arvalid": In(1), "arready": Out(1),
            "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
        })


#: AXI4 ID width of the memory master (DESIGN §1).
AXI_ID_WIDTH = 4


class AxiSignature(wiring.Signature):
    """AXI4 master port, seen from the master (DESIGN §1: no region/user signals).

    Member names are the AXI signal names in lower case, so the top level can
    expose them as ``m_axi_<name>`` by iterating the members."""

    def __init__(self, *, addr_width=56, data_width=64):
        if data_width not in (64, 128):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(AXI_ID_WIDTH), f"{ch}addr": Out(addr_width), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}lock": Out(1),
                f"{ch}cache": Out(4), f"{ch}prot": Out(3), f"{ch}qos": Out(4),
                f"{ch}valid": Out(1), f"{ch}ready": In(1),
            })
        members.update({
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(AXI_ID_WIDTH), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(AXI_ID_WIDTH), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)


#: W1C status bits that no hardware event ever sets (DESIGN §2: cmd_to is
#: "never set"): they read 0 and are not part of a queue engine's port.
NEVER_SET = ("cmd_to",)


def queue_mask(log2sz_1):
    """Index mask of a queue of 2**(log2sz_1+1) entries (LOG2SZ-1 at most 15),
    17 bits wide.

    Bit i is a comparison of ``log2sz_1`` with the constant i (no carry chain);
    a bit that ``log2sz_1``'s width cannot reach is 0."""
    top = (1 << len(log2sz_1)) - 1
    return Cat(Const(1), *(log2sz_1 >= i if i <= top else Const(0) for i in range(1, 17)))


def queue_status_names(queue):
    """The status bits queue ``"cq"``, ``"fq"`` or ``"pq"``'s engine can set: the
    W1C fields of its csr in the register table, less :data:`NEVER_SET`."""
    from prifence.formats import REG, Access
    return tuple(f.name for f in REG[f"{queue}csr"].fields
                 if f.access is Access.W1C and f.name not in NEVER_SET)


class DdtpSignature(wiring.Signature):
    """ddtp as the register file gives it to the context lookup (seen from the
    register file, which declares ``Out(DdtpSignature())``; the lookup ``In``).

    ``written`` pulses for one cycle when a ddtp write is accepted (the new
    ``mode``/``ppn`` are visible from the next cycle): the lookup then empties
    its cache and stops in-flight context reads from filling it."""

    def __init__(self):
        super().__init__({"mode": Out(4), "ppn": Out(44), "written": Out(1)})

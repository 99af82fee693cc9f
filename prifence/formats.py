"""Bit layouts, register map and command encodings of prifence.

This module is the single definition of every format that crosses the
hardware/software boundary (``DESIGN.md`` §1–§3): the ``page_req`` and
``prg_resp`` stream payloads, the PQ and FQ records, the device-context
``tc`` doubleword, the command formats and the register table.  The RTL uses
the :mod:`amaranth.lib.data` layouts directly; the driver, device and
transaction-level models use :class:`Codec` objects derived from the same
layouts.  No bit position is written anywhere else.

It may import :mod:`amaranth.lib.data` and :mod:`amaranth.lib.enum` and
nothing else of the project.
"""

import enum as _pyenum
from dataclasses import dataclass

from amaranth.lib import data

__all__ = [
    "ADDR_WIDTH", "PAGE_SHIFT",
    "ResponseCode", "Cause", "Opcode", "DdtpMode", "TTYP_PAGE_REQUEST", "IOTVAL_PAGE_REQUEST",
    "PageRequest", "PrgResponse", "PqRecord", "FqRecord", "DeviceContextTc",
    "CommandHeader", "IofenceCmd", "InvalDdtCmd", "PrgrCmd",
    "PQ_RECORD_BYTES", "FQ_RECORD_BYTES", "COMMAND_BYTES", "DC_BYTES", "DDT_INDEX_BITS",
    "Access", "Field", "Register", "REGISTERS", "REG", "Codec", "codec", "reserved_field_names",
    "is_stop_marker", "dc_misconfigured", "CAPABILITIES_VERSION",
]

#: Physical address width of the memory port (default parameter, DESIGN §1).
ADDR_WIDTH = 56
PAGE_SHIFT = 12

PQ_RECORD_BYTES = 16
FQ_RECORD_BYTES = 32
COMMAND_BYTES = 16
DC_BYTES = 32
#: 1LVL device directory: device_id[6:0] indexes it, wider ids are "too wide".
DDT_INDEX_BITS = 7
CAPABILITIES_VERSION = 0x10


class ResponseCode(_pyenum.IntEnum):
    """PCIe PRG response codes (the only ones a correct run ever sends)."""
    SUCCESS = 0x0
    INVALID_REQUEST = 0x1
    RESPONSE_FAILURE = 0xF


class Cause(_pyenum.IntEnum):
    """FQ record causes used by the page-request path (DESIGN §4)."""
    ALL_INBOUND_DISALLOWED = 256
    DDT_LOAD_FAULT = 257
    DDT_INVALID = 258
    DDT_MISCONFIGURED = 259
    TRANSACTION_TYPE_DISALLOWED = 260


#: FQ TTYP of a page request, and its iotval.
TTYP_PAGE_REQUEST = 9
IOTVAL_PAGE_REQUEST = 0x04


class Opcode(_pyenum.IntEnum):
    """(opcode, func3) of every command this design executes (DESIGN §3)."""
    IOFENCE_C = 2
    IODIR = 3
    ATS = 4
    IOFENCE_PD = 64


#: func3 values of the commands above.
FUNC3_IOFENCE_C = 0
FUNC3_INVAL_DDT = 0
FUNC3_PRGR = 1
FUNC3_IOFENCE_PD = 0


class DdtpMode(_pyenum.IntEnum):
    OFF = 0
    BARE = 1
    LVL1 = 2


# --- stream payloads (DESIGN §1) -------------------------------------------------

class PageRequest(data.Struct):
    """Payload of the ``page_req`` stream.  ``addr`` is the page address [63:12]."""
    did: 24
    pv: 1
    pid: 20
    priv: 1
    exec: 1
    r: 1
    w: 1
    l: 1
    prgi: 9
    addr: 52


class PrgResponse(data.Struct):
    """Payload of the ``prg_resp`` stream.  ``pid`` is 0 when ``pv`` is 0."""
    did: 24
    pv: 1
    pid: 20
    prgi: 9
    code: 4


# --- memory records (DESIGN §3) --------------------------------------------------

class PqRecord(data.Struct):
    """Page-request queue record, 16 bytes (two 64-bit doublewords)."""
    _rsvd0: 12
    pid: 20
    pv: 1
    priv: 1
    exec: 1
    _rsvd1: 5
    did: 24
    # dw1
    r: 1
    w: 1
    l: 1
    prgi: 9
    addr: 52


class FqRecord(data.Struct):
    """Fault queue record, 32 bytes (four doublewords)."""
    cause: 12
    pid: 20
    pv: 1
    priv: 1
    ttyp: 6
    did: 24
    _dw1: 64
    iotval: 64
    _dw3: 64


class DeviceContextTc(data.Struct):
    """Device context dw0 (``tc``), the only doubleword this design reads."""
    v: 1
    en_ats: 1
    en_pri: 1
    t2gpa: 1
    dtf: 1
    pdtv: 1
    prpr: 1
    gade: 1
    sade: 1
    dpe: 1
    sbe: 1
    sxl: 1
    _rsvd0: 12
    custom: 8
    _rsvd1: 32


# --- commands (DESIGN §3) --------------------------------------------------------

class CommandHeader(data.Struct):
    """The part of dw0 every command shares, and the rest as raw bits."""
    opcode: 7
    func3: 3
    rest: 54
    dw1: 64


class IofenceCmd(data.Struct):
    """``IOFENCE.C`` (opcode 2) and ``IOFENCE.PD`` (opcode 64); same fields."""
    opcode: 7
    func3: 3
    av: 1
    wsi: 1
    pr: 1
    pw: 1
    _rsvd0: 18
    data: 32
    addr: 62     # ADDR[63:2]: the AV store goes to addr * 4
    _rsvd1: 2


class InvalDdtCmd(data.Struct):
    """``IODIR.INVAL_DDT`` (opcode 3, func3 0)."""
    opcode: 7
    func3: 3
    _rsvd0: 2
    pid: 20
    _rsvd1: 1
    dv: 1
    _rsvd2: 6
    did: 24
    _rsvd3: 64


class PrgrCmd(data.Struct):
    """``ATS.PRGR`` (opcode 4, func3 1).  dw1 bits other than PRGI and code are
    ignored by the hardware."""
    opcode: 7
    func3: 3
    _rsvd0: 2
    pid: 20
    pv: 1
    dsv: 1
    _rsvd1: 6
    rid: 16
    dseg: 8
    _ign0: 32
    prgi: 9
    _ign1: 3
    code: 4
    _ign2: 16


def is_stop_marker(pv, l, r, w):
    """A Stop Marker is PV=1, L=1, R=0, W=0 (PCIe; works on ints and Values)."""
    return pv & l & ~r & ~w & 1 if isinstance(pv, int) else pv & l & ~r & ~w


# --- Python codecs derived from the layouts ------------------------------------

def reserved_field_names(layout):
    """Names of the reserved fields of ``layout``: ``_``-prefixed, except the
    ignored ``_ign*`` ones (shared by the RTL decoders and the Python codecs)."""
    layout = data.Layout.cast(layout)
    return tuple(name for name, _ in layout
                 if name.startswith("_") and not name.startswith("_ign"))


class Codec:
    """Pack and unpack integers (and little-endian bytes) of one layout.

    Fields whose names start with ``_`` are not public: :meth:`pack` writes
    them as 0 unless given explicitly and :meth:`unpack` omits them.  Of those,
    ``_ign*`` fields are *ignored* (DESIGN §3: the other dw1 bits of
    ``ATS.PRGR``) and every other one is *reserved*: :attr:`reserved_mask` and
    :meth:`reserved_bits` cover exactly the reserved ones, so a checker or a
    decoder can flag them.
    """

    def __init__(self, layout):
        if isinstance(layout, type) and issubclass(layout, data.Struct):
            layout = data.Layout.cast(layout)
        if not isinstance(layout, data.StructLayout):
            raise TypeError(f"Codec needs a StructLayout or Struct, not {layout!r}")
        self.layout = layout
        self.width = layout.size
        self.nbytes = (self.width + 7) // 8
        self.fields = {name: (f.offset, f.width) for name, f in layout}
        self.public = tuple(n for n in self.fields if not n.startswith("_"))
        self.reserved_mask = 0
        for name in reserved_field_names(layout):
            off, width = self.fields[name]
            self.reserved_mask |= ((1 << width) - 1) << off

    def offset(self, name):
        return self.fields[name][0]

    def mask(self, name):
        off, width = self.fields[name]
        return ((1 << width) - 1) << off

    def pack(self, **values):
        word = 0
        for name, value in values.items():
            try:
                off, width = self.fields[name]
            except KeyError:
                raise KeyError(f"{name!r} is not a field of {self.layout!r}") from None
            value = int(value)
            if value < 0 or value >> width:
                raise ValueError(f"{name}={value:#x} does not fit in {width} bits")
            word |= value << off
        return word

    def unpack(self, word):
        return {name: (word >> self.fields[name][0]) & ((1 << self.fields[name][1]) - 1)
                for name in self.public}

    def get(self, word, name):
        off, width = self.fields[name]
        return (word >> off) & ((1 << width) - 1)

    def reserved_bits(self, word):
        return word & self.reserved_mask

    def to_bytes(self, word):
        return int(word).to_bytes(self.nbytes, "little")

    def from_bytes(self, raw):
        if len(raw) != self.nbytes:
            raise ValueError(f"expected {self.nbytes} bytes, got {len(raw)}")
        return int.from_bytes(raw, "little")


_codecs = {}


def codec(layout):
    """The shared :class:`Codec` of ``layout`` (built once)."""
    try:
        return _codecs[layout]
    except KeyError:
        _codecs[layout] = c = Codec(layout)
        return c


def dc_misconfigured(tc):
    """Is device-context dw0 ``tc`` (an int) misconfigured (cause 259, DESIGN §3)?"""
    c = codec(DeviceContextTc)
    f = c.unpack(tc)
    return bool(
        (tc & c.reserved_mask)
        or (f["en_pri"] and not f["en_ats"])
        or (f["prpr"] and not f["en_pri"])
        or f["t2gpa"]
        or (f["dpe"] and not f["pdtv"])
        or f["gade"] or f["sade"] or f["sbe"] or f["sxl"]
    )


# --- register table (DESIGN §2) ----------------------------------------------

class Access(_pyenum.Enum):
    RW = "rw"        # software writes, hardware reads
    RO = "ro"        # hardware drives (status, constants, hardware-owned indices)
    W1C = "w1c"      # hardware sets, software clears by writing 1


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    access: Access

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    size: int              # bytes: 4 or 8
    fields: tuple

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def encode(self, **values):
        word = 0
        for name, value in values.items():
            f = self.field(name)
            if value < 0 or value >> f.width:
                raise ValueError(f"{self.name}.{name}={value:#x} does not fit in {f.width} bits")
            word |= value << f.lsb
        return word

    def decode(self, word):
        return {f.name: (word >> f.lsb) & ((1 << f.width) - 1) for f in self.fields}

    def get(self, word, name):
        f = self.field(name)
        return (word >> f.lsb) & ((1 << f.width) - 1)


def _f(name, lsb, width=1, access=Access.RW):
    return Field(name, lsb, width, access)


RO, W1C = Access.RO, Access.W1C


def _queue_base(name, offset):
    return Register(name, offset, 8, (_f("log2sz_1", 0, 5), _f("ppn", 10, 44)))


def _index(name, offset, access):
    return Register(name, offset, 4, (_f("index", 0, 32, access),))


REGISTERS = (
    Register("capabilities", 0, 8, (
        _f("version", 0, 8, RO), _f("ats", 25, 1, RO), _f("igs", 28, 2, RO),
        _f("pas", 32, 6, RO))),
    Register("fctl", 8, 4, (_f("be", 0, 1, RO), _f("wsi", 1, 1, RO), _f("gxl", 2, 1, RO))),
    Register("ddtp", 16, 8, (_f("iommu_mode", 0, 4), _f("busy", 4, 1, RO), _f("ppn", 10, 44))),
    _queue_base("cqb", 24),
    _index("cqh", 32, RO),
    _index("cqt", 36, Access.RW),
    _queue_base("fqb", 40),
    _index("fqh", 48, Access.RW),
    _index("fqt", 52, RO),
    _queue_base("pqb", 56),
    _index("pqh", 64, Access.RW),
    _index("pqt", 68, RO),
    Register("cqcsr", 72, 4, (
        _f("cqen", 0), _f("cie", 1), _f("cqmf", 8, 1, W1C), _f("cmd_to", 9, 1, W1C),
        _f("cmd_ill", 10, 1, W1C), _f("fence_w_ip", 11, 1, W1C),
        _f("cqon", 16, 1, RO), _f("busy", 17, 1, RO))),
    Register("fqcsr", 76, 4, (
        _f("fqen", 0), _f("fie", 1), _f("fqmf", 8, 1, W1C), _f("fqof", 9, 1, W1C),
        _f("fqon", 16, 1, RO), _f("busy", 17, 1, RO))),
    Register("pqcsr", 80, 4, (
        _f("pqen", 0), _f("pie", 1), _f("pqmf", 8, 1, W1C), _f("pqof", 9, 1, W1C),
        _f("pqon", 16, 1, RO), _f("busy", 17, 1, RO))),
    Register("ipsr", 84, 4, (_f("cip", 0, 1, W1C), _f("fip", 1, 1, W1C), _f("pip", 3, 1, W1C))),
)

#: Registers by name.
REG = {r.name: r for r in REGISTERS}

#: Largest LOG2SZ-1 a queue base accepts (WARL): 2^16 = 64 Ki entries.
MAX_LOG2SZ_1 = 15

# The AXI4 memory master of prifence (DESIGN.md §1 "m_axi_*", §2 "AXI4 master"):
# it multiplexes the blocks' memory client ports (rtl/bus.py) onto one AXI4 port.

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from .bus import AXI_ID_WIDTH, AxiSignature, MemReadSignature, MemWriteSignature

__all__ = ["AxiMaster", "AXI_BURST_INCR", "AXI_CACHE", "AXI_PROT"]

#: AxBURST of every transaction (DESIGN §1: INCR only).
AXI_BURST_INCR = 0b01
#: AxCACHE: normal non-cacheable bufferable memory (queues and tables are plain RAM).
AXI_CACHE = 0b0011
#: AxPROT: privileged, non-secure, data access.
AXI_PROT = 0b011


def _round_robin(m, name, requests, last):
    """Pick the first requesting client after ``last`` (round-robin).

    Returns ``(any, index)`` signals, both combinational."""
    count = len(requests)
    grant_any = Signal(name=f"{name}_any")
    grant = Signal(range(max(count, 2)), name=f"{name}_grant")
    with m.Switch(last):
        for prev in range(count):
            with m.Case(prev):
                order = [(prev + 1 + k) % count for k in range(count)]
                for k, client in enumerate(order):
                    with (m.If if k == 0 else m.Elif)(requests[client]):
                        m.d.comb += [grant_any.eq(1), grant.eq(client)]
    return grant_any, grant


class AxiMaster(wiring.Component):
    """AXI4 master shared by the memory clients of the design.

    Parameters
    ----------
    read_clients, write_clients : int
        Number of read and write client ports (each at least 1; together they
        may use at most 16 IDs of each kind).
    addr_width : int
        Memory address width (``m_axi_awaddr``/``araddr``).
    data_width : int
        64 or 128.

    Members
    -------
    axi : Out(AxiSignature)
        The AXI4 port; member names are the AXI signal names.
    read : In(MemReadSignature), one per read client (``read[i]``).
    write : In(MemWriteSignature), one per write client (``write[j]``).

    Contract
    --------
    * Read client *i* uses ARID *i*, write client *j* uses AWID *j*; R and B
      responses are routed back by ID, so every client sees its own responses
      in the order it issued its requests.  A response with an ID that names no
      client is accepted and dropped.
    * Address channels are granted round-robin among the clients that have a
      request; a granted request sits in an output register until the slave
      takes it (AxVALID never depends on AxREADY).
    * W beats follow AW order: the client whose AW was granted first sends its
      whole burst first.  A client may present W before its AW is taken; the
      master forwards it as soon as that burst is at the head of the AW order,
      without a bubble between back-to-back bursts (a W beat every cycle when
      the clients and the slave allow).
    * AWBURST/ARBURST are INCR, AxLOCK 0, AxCACHE :data:`AXI_CACHE`, AxPROT
      :data:`AXI_PROT`, AxQOS 0.  Clients keep their bursts within 4 KiB and
      at most 4 beats (the master passes ``len`` and ``size`` through).
    * The master holds no response: ``rready``/``bready`` are the addressed
      client's ``ready``.
    """

    def __init__(self, *, read_clients=1, write_clients=1, addr_width=56, data_width=64,
                 w_order_depth=8):
        for name, value in (("read_clients", read_clients), ("write_clients", write_clients)):
            if not isinstance(value, int) or not 1 <= value <= (1 << AXI_ID_WIDTH):
                raise TypeError(f"{name} must be an integer in 1..{1 << AXI_ID_WIDTH}, not {value!r}")
        if not isinstance(addr_width, int) or addr_width <= 12:
            raise TypeError(f"addr_width must be an integer above 12, not {addr_width!r}")
        if data_width not in (64, 128):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        if not isinstance(w_order_depth, int) or w_order_depth < 2:
            raise TypeError(f"w_order_depth must be an integer of at least 2, not {w_order_depth!r}")
        self.read_clients, self.write_clients = read_clients, write_clients
        self.addr_width, self.data_width = addr_width, data_width
        self.w_order_depth = w_order_depth
        members = {"axi": Out(AxiSignature(addr_width=addr_width, data_width=data_width))}
        client = dict(addr_width=addr_width, data_width=data_width)
        members["read"] = In(MemReadSignature(**client)).array(read_clients)
        members["write"] = In(MemWriteSignature(**client)).array(write_clients)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        axi = self.axi

        for ch in ("aw", "ar"):
            m.d.comb += [
                getattr(axi, f"{ch}burst").eq(AXI_BURST_INCR),
                getattr(axi, f"{ch}lock").eq(0),
                getattr(axi, f"{ch}cache").eq(AXI_CACHE),
                getattr(axi, f"{ch}prot").eq(AXI_PROT),
                getattr(axi, f"{ch}qos").eq(0),
            ]

        # --- address channels: round-robin into an output register ------------
        m.submodules.w_order = w_order = fifo.SyncFIFO(
            width=max(1, (self.write_clients - 1).bit_length()), depth=self.w_order_depth)

        for ch, clients, needs_order in (("aw", self.write, True), ("ar", self.read, False)):
            valid = getattr(axi, f"{ch}valid")
            ready = getattr(axi, f"{ch}ready")
            last = Signal(range(max(len(clients), 2)), name=f"{ch}_last_grant")
            requests = [getattr(c, ch).valid for c in clients]
            grant_any, grant = _round_robin(m, ch, requests, last)
            can_load = ~valid | ready
            if needs_order:
                can_load = can_load & w_order.w_rdy
            with m.If(valid & ready):
                m.d.sync += valid.eq(0)
            # The address, length and size registers load the granted client's
            # request whenever the register may change (when nothing is granted
            # they load a request that AxVALID does not offer), so their load
            # enable is the channel's handshake, not the arbitration.
            with m.If(can_load):
                with m.Switch(grant):
                    for index, c in enumerate(clients):
                        port = getattr(c, ch)
                        with m.Case(index):
                            m.d.sync += [
                                getattr(axi, f"{ch}addr").eq(port.p.addr),
                                getattr(axi, f"{ch}len").eq(port.p.len),
                                getattr(axi, f"{ch}size").eq(port.p.size),
                            ]
            with m.If(can_load & grant_any):
                m.d.sync += [valid.eq(1), last.eq(grant), getattr(axi, f"{ch}id").eq(grant)]
                for index, c in enumerate(clients):
                    with m.If(grant == index):
                        m.d.comb += getattr(c, ch).ready.eq(1)
                if needs_order:
                    m.d.comb += w_order.w_en.eq(1)
            if needs_order:
                m.d.comb += w_order.w_data.eq(grant)

        # --- W: the head of the AW order owns the channel -----------------------
        w_owner = w_order.r_data
        for index, c in enumerate(self.write):
            with m.If(w_order.r_rdy & (w_owner == index)):
                m.d.comb += [
                    axi.wvalid.eq(c.w.valid),
                    axi.wdata.eq(c.w.p.data),
                    axi.wstrb.eq(c.w.p.strb),
                    axi.wlast.eq(c.w.p.last),
                    c.w.ready.eq(axi.wready),
                ]
        m.d.comb += w_order.r_en.eq(axi.wvalid & axi.wready & axi.wlast)

        # --- responses, routed by ID ---------------------------------------------
        m.d.comb += [axi.bready.eq(1), axi.rready.eq(1)]
        for index, c in enumerate(self.write):
            m.d.comb += [c.b.valid.eq(axi.bvalid & (axi.bid == index)), c.b.p.resp.eq(axi.bresp)]
            with m.If(axi.bid == index):
                m.d.comb += axi.bready.eq(c.b.ready)
        for index, c in enumerate(self.read):
            m.d.comb += [
                c.r.valid.eq(axi.rvalid & (axi.rid == index)),
                c.r.p.data.eq(axi.rdata), c.r.p.resp.eq(axi.rresp), c.r.p.last.eq(axi.rlast),
            ]
            with m.If(axi.rid == index):
                m.d.comb += axi.rready.eq(c.r.ready)
        return m

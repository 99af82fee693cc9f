# The AXI4 memory master of prifence (DESIGN.md §1 "m_axi_*", §2 "AXI4 master"):
# it multiplexes the blocks' memory client ports (rtl/bus.py) onto one AXI4 port.

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bus import AXI_ID_WIDTH, AxiSignature, MemReadSignature, MemWriteSignature

__all__ = ["AxiMaster", "AXI_BURST_INCR", "AXI_CACHE", "AXI_PROT"]

#: AxBURST of every transaction (DESIGN §1: INCR only).
AXI_BURST_INCR = 0b01
#: AxCACHE: normal non-cacheable bufferable memory (queues and tables are plain RAM).
AXI_CACHE = 0b0011
#: AxPROT: privileged, non-secure, data access.
AXI_PROT = 0b011


def _one_hot_mux(selects, values):
    """AND-OR multiplexer: ``values[i]`` where the one-hot ``selects[i]`` is set."""
    out = 0
    for select, value in zip(selects, values):
        out = out | (value & select.replicate(len(value)))
    return out


def _next_turn(m, name, requests, turn):
    """Round-robin: the one-hot ``turn`` moves to the first requesting client
    after it (itself last); it stays where it is when nothing is requested.

    Returns the next value of ``turn`` (combinational)."""
    count = len(requests)
    # Kept: logic that needs the next turn takes it as one net.
    nxt = Signal(count, name=f"{name}_next_turn", attrs={"keep": 1})
    m.d.comb += nxt.eq(turn)
    for prev in range(count):
        with m.If(turn[prev]):
            order = [(prev + 1 + k) % count for k in range(count)]
            for k, client in enumerate(order):
                with (m.If if k == 0 else m.Elif)(requests[client]):
                    m.d.comb += nxt.eq(1 << client)
    return nxt


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
    w_order_depth : int
        AW bursts whose W is still owed (the AW order).
    early_w_clients : tuple of int or None
        Write clients whose lone burst's first W beat may leave with its AW
        (see the contract); ``None`` names every client.

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
    * Address channels are granted round-robin: each channel offers its
      ``ready`` to one client at a time (a one-hot "turn" register); the turn
      moves, in the cycle after, to the next client with a request, so a
      client that alone has requests is offered the channel every cycle.  A
      granted request sits in an output register until the slave takes it
      (AxVALID never depends on AxREADY).  AW is offered only while the AW
      order (``w_order_depth`` bursts, at least 3) has room: while it held
      at most ``w_order_depth - 3`` bursts two cycles before (worked out
      from flip-flops only).
    * W beats follow AW order: the client whose AW was granted first sends its
      whole burst first.  A granted AW joins the order as it is granted, and
      the head of the order owns W from the cycle after.  A client named in
      ``early_w_clients`` (default: all) also owns W in the cycle its AW is
      taken when the order is empty and AWVALID is low, so its first beat
      reaches the port together with its AW (a burst it completes in that
      cycle never enters the order); any other client's lone burst starts on
      W one cycle after its AW.  A client may present W before its AW is
      taken; the master forwards it once that burst is at the head of the AW
      order, without a bubble between back-to-back bursts of the order (a W
      beat every cycle when the clients and the slave allow).
      ``wvalid``/``wdata``/``wstrb``/``wlast`` are an output register, the
      W path's only storage: a client's ``w.ready`` is high only while that
      register is empty or being taken (``~wvalid | wready``), ANDed with a
      flip-flop (head of the order) or for an early-W client with that
      flip-flop OR (a flip-flop "order empty, AW register free" AND its AW
      turn AND its ``aw.valid``): no input of the same cycle reaches it but
      ``wready`` and an early client's own ``aw.valid``.  A beat reaches
      WVALID one cycle after the client hands it over.
    * AWBURST/ARBURST are INCR, AxLOCK 0, AxCACHE :data:`AXI_CACHE`, AxPROT
      :data:`AXI_PROT`, AxQOS 0.  Clients keep their bursts within 4 KiB and
      at most 4 beats (the master passes ``len`` and ``size`` through).
    * The master holds no response: ``rready``/``bready`` are the addressed
      client's ``ready``.
    """

    def __init__(self, *, read_clients=1, write_clients=1, addr_width=56, data_width=64,
                 w_order_depth=8, early_w_clients=None):
        for name, value in (("read_clients", read_clients), ("write_clients", write_clients)):
            if not isinstance(value, int) or not 1 <= value <= (1 << AXI_ID_WIDTH):
                raise TypeError(f"{name} must be an integer in 1..{1 << AXI_ID_WIDTH}, not {value!r}")
        if not isinstance(addr_width, int) or addr_width <= 12:
            raise TypeError(f"addr_width must be an integer above 12, not {addr_width!r}")
        if data_width not in (64, 128):
            raise TypeError(f"data_width must be 64 or 128, not {data_width!r}")
        if not isinstance(w_order_depth, int) or w_order_depth < 3:
            raise TypeError(f"w_order_depth must be an integer of at least 3, not {w_order_depth!r}")
        self.read_clients, self.write_clients = read_clients, write_clients
        self.addr_width, self.data_width = addr_width, data_width
        self.w_order_depth = w_order_depth
        if early_w_clients is None:
            early_w_clients = tuple(range(write_clients))
        early_w_clients = tuple(early_w_clients)
        if not all(isinstance(j, int) and 0 <= j < write_clients for j in early_w_clients):
            raise TypeError(f"early_w_clients must name write clients 0..{write_clients - 1}, "
                            f"not {early_w_clients!r}")
        self.early_w_clients = early_w_clients
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
        # Each channel offers its ``ready`` to one client at a time, the one
        # whose turn it is (a one-hot register that moves on round-robin in
        # the cycle after): a client's ``ready`` is one LUT from flip-flops and
        # the address register's input is a multiplexer with registered selects.
        depth = self.w_order_depth
        width = self.write_clients
        early = [j in self.early_w_clients for j in range(width)]
        # AW order: a circular buffer of one-hot client masks, entries written
        # only as they are granted (so nothing of the W channel reaches their
        # enables), with the first two places of the order also kept in
        # registers of their own (``head_ok``, ``second``) and the occupancy
        # as a thermometer code (``order_valid``): the head's last beat only
        # moves the third place's pointer (``third_ptr``), the occupancy and
        # those two registers.
        order = [Signal(width, name=f"w_order_{k}") for k in range(depth)]
        order_valid = Signal(depth, name="w_order_valid")
        # A granted AW enters the order as it is granted.
        order_push = Signal(width, name="w_order_push")
        # Room for one more burst: a flip-flop worked out from the occupancy
        # two cycles before (see ``room_ahead`` below).
        order_room = Signal(name="w_order_room", init=1)
        order_room_next = Signal(name="w_order_room_next")
        m.d.sync += order_room.eq(order_room_next)

        for ch, clients, needs_order in (("aw", self.write, True), ("ar", self.read, False)):
            valid = getattr(axi, f"{ch}valid")
            ready = getattr(axi, f"{ch}ready")
            count = len(clients)
            ports = [getattr(c, ch) for c in clients]
            turn = Signal(count, name=f"{ch}_turn", init=1)
            turn_next = _next_turn(m, ch, [p.valid for p in ports], turn)
            m.d.sync += turn.eq(turn_next)
            # A copy of ``turn`` for the address multiplexer (some 60 selects),
            # so the turn flip-flops that feed the handshakes and the AW order
            # drive few loads.  It is kept inverted only so that synthesis
            # keeps it a register of its own.
            select_n = Signal(count, name=f"{ch}_select_n", init=~turn.init & ((1 << count) - 1))
            m.d.sync += select_n.eq(~turn_next)
            select = ~select_n
            can_load = ~valid | ready
            if needs_order:
                # "Its turn and the order has room" per client, a flip-flop
                # worked out a cycle ahead: a client's ``aw.ready`` and its
                # push into the AW order are one LUT4 each.
                offered = Signal(count, name=f"{ch}_turn_room", init=turn.init)
                m.d.sync += offered.eq(turn_next & order_room_next.replicate(count))
            else:
                offered = turn
            for index, p in enumerate(ports):
                m.d.comb += p.ready.eq(offered[index] & can_load)
            in_turn = Cat(*(offered[i] & p.valid for i, p in enumerate(ports))).any()
            # The address, length, size and ID registers load the client in
            # turn whenever the register may change (when that client offers
            # nothing AxVALID does not offer it either), so their load enable
            # is the channel's handshake, not the arbitration.
            valid_next = Signal(name=f"{ch}_valid_next")
            m.d.comb += valid_next.eq(Mux(can_load, in_turn, valid))
            m.d.sync += valid.eq(valid_next)
            # The registers' load enable (some 60 loads) comes from a copy of
            # AxVALID (kept inverted so that synthesis keeps it apart), so
            # the handshake logic's ``can_load`` drives few loads.
            idle_n = Signal(name=f"{ch}_idle_n", init=1)
            m.d.sync += idle_n.eq(~valid_next)
            with m.If(idle_n | ready):
                m.d.sync += [
                    getattr(axi, f"{ch}addr").eq(_one_hot_mux(select, [p.p.addr for p in ports])),
                    getattr(axi, f"{ch}len").eq(_one_hot_mux(select, [p.p.len for p in ports])),
                    getattr(axi, f"{ch}size").eq(_one_hot_mux(select, [p.p.size for p in ports])),
                    getattr(axi, f"{ch}id").eq(
                        _one_hot_mux(select, [Const(i, AXI_ID_WIDTH) for i in range(count)])),
                ]
            if needs_order:
                aw_turn, awvalid_next = turn, valid_next
                # The pushes into the AW order: one kept LUT per client from
                # flip-flops and the port's ``awready``.
                push_bits = [Signal(name=f"w_order_push_{i}", attrs={"keep": 1})
                             for i in range(count)]
                for i, p in enumerate(ports):
                    m.d.comb += push_bits[i].eq(offered[i] & p.valid & (~valid | ready))
                m.d.comb += order_push.eq(Cat(*push_bits))

        # --- W: the head of the AW order owns the channel -----------------------
        # ``m_axi_w*`` are an output register, the only storage of the W path:
        # a client hands a beat over only when that register is empty or being
        # taken (``w_free``), so no skid register is needed for one beat per
        # cycle.  Whether a client owns the channel is kept in flip-flops
        # worked out a cycle ahead from the next state of the order and of
        # AWVALID: ``head_ok`` (the head of the order) and ``idle_ok`` (order
        # empty, AW register free).  A client's ``w.ready`` is ``head_ok``, or
        # for an early-W client ``head_ok`` or (``idle_ok`` and its AW taken
        # now, which then is "its turn and its aw.valid"), AND ``w_free``: one
        # LUT from flip-flops and the port's ``wready``.  An early-W client's
        # beat taken with its AW reaches the port with that AW; a burst it
        # completes in that cycle never enters the order.
        head_ok = Signal(width, name="w_head_ok")
        idle_ok = Signal(name="w_idle_ok", init=1)
        # The data multiplexer's selects come from a copy of ``head_ok`` (some
        # 70 loads each, kept off the flip-flops of the handshakes, and kept
        # inverted only so that synthesis keeps it apart from ``head_ok``):
        # the head, or for an early-W client also ``idle_ok`` and its AW turn
        # (its beat is taken only with its AW; without its ``aw.valid`` no
        # beat is taken and the data does not matter).  ``head_ok`` is 0
        # while ``idle_ok`` is 1, so the selects stay one-hot.
        head_copy_n = Signal(width, name="w_head_copy_n", init=(1 << width) - 1)
        head_ok_next = Signal(width, name="w_head_ok_next")
        m.d.sync += head_copy_n.eq(~head_ok_next)
        data_select = Signal(width, name="w_data_select")
        early_list = [i for i in range(width) if early[i]]
        for i in range(width):
            if early_list == [i]:
                # The only early-W client may be selected whenever no other
                # client is the head (with no head, no other beat is taken).
                m.d.comb += data_select[i].eq(~Cat(*(~head_copy_n[j] for j in range(width)
                                                     if j != i)).any())
            elif early[i]:
                m.d.comb += data_select[i].eq(~head_copy_n[i] | (idle_ok & aw_turn[i]))
            else:
                m.d.comb += data_select[i].eq(~head_copy_n[i])
        w_layout_width = self.data_width + self.data_width // 8 + 1
        offered = Signal(w_layout_width, name="w_offered")
        m.d.comb += offered.eq(_one_hot_mux(data_select, [c.w.payload.as_value() for c in self.write]))
        w_free = Signal(name="w_free")
        m.d.comb += w_free.eq(~axi.wvalid | axi.wready)
        beat_taken = Signal(name="w_beat_taken")
        # The head's last beat: the order pops.  It and the push below are
        # nets that synthesis keeps, so each is mapped as a tree of its own
        # (two LUT levels from flip-flops) and everything that follows them
        # is one LUT more (area mapping would otherwise build chains).
        last_taken = Signal(name="w_last_taken", attrs={"keep": 1})
        owns = [Signal(name=f"w_owns_{i}") for i in range(width)]
        # "Client i is the head and offers its last beat", one kept LUT each.
        head_last = [Signal(name=f"w_head_last_{i}", attrs={"keep": 1}) for i in range(width)]
        for i, c in enumerate(self.write):
            m.d.comb += head_last[i].eq(head_ok[i] & c.w.valid & c.w.p.last)
        with_aw = [Signal(name=f"w_with_aw_{i}") for i in range(width)]
        for index, c in enumerate(self.write):
            if early[index]:
                m.d.comb += with_aw[index].eq(idle_ok & aw_turn[index] & self.write[index].aw.valid)
            m.d.comb += [owns[index].eq(head_ok[index] | with_aw[index]),
                         c.w.ready.eq(owns[index] & w_free)]
        m.d.comb += [
            beat_taken.eq(Cat(*(c.w.valid & owns[i] for i, c in enumerate(self.write))).any()),
            last_taken.eq(Cat(*head_last).any() & (~axi.wvalid | axi.wready)),
        ]
        out = Cat(axi.wdata, axi.wstrb, axi.wlast)
        with m.If(w_free):
            m.d.sync += axi.wvalid.eq(beat_taken)
        # The data register's load enable (some 70 loads) comes from a copy
        # of WVALID (inverted so that synthesis keeps it apart), so ``w_free``
        # of the handshakes drives few loads.
        w_idle_n = Signal(name="w_idle_n", init=1)
        with m.If(w_idle_n | axi.wready):
            m.d.sync += [w_idle_n.eq(~beat_taken), out.eq(offered)]

        # The order: the head's last beat (``last_taken``) pops it, a granted
        # AW pushes (after the pop).  A burst over in its AW's cycle finds the
        # order empty (and no head to pop): it does not enter it.
        # ``wr_ptr`` is where the next entry goes (place ``n`` of the order),
        # ``third_ptr`` the entry in place 2; places 0 and 1 are read from
        # ``head_ok`` and ``second``.  A free entry's contents are never
        # used, so the entry under ``wr_ptr`` loads the incoming mask every
        # cycle the order has room.
        ptr_width = max(depth - 1, 1).bit_length()
        wr_ptr = Signal(ptr_width, name="w_order_wr")
        third_ptr = Signal(ptr_width, name="w_order_third", init=2 % depth)

        def _advance(ptr, step):
            # ``ptr + step`` modulo ``depth``, written without a multiplexer
            # back from the register (no clock enable: on iCE40 an enable
            # with a synchronous reset costs a LUT).
            # Bit by bit (an adder would be a carry chain).
            bits = [ptr[b] ^ (step & ptr[:b].all() if b else step) for b in range(ptr_width)]
            if depth == 1 << ptr_width:
                return Cat(*bits)
            return Cat(*bits) & ~((ptr == depth - 1) & step).replicate(ptr_width)

        # Written out so that the W channel's part is one LUT ahead of the
        # last one: ``keep[i]`` is low when client ``i``'s burst would be
        # over in its AW's cycle (only then is ``idle_ok`` high and the AW
        # offered, so the offer needs not be in it).
        keep = [Signal(name=f"w_keep_{i}", attrs={"keep": 1}) for i in range(width)]
        for i, c in enumerate(self.write):
            m.d.comb += keep[i].eq(~(idle_ok & c.w.valid & c.w.p.last & w_free) if early[i] else 1)
        # (Written as "any push, unless an early-W client's burst is over
        # now", not sharing ``push & keep`` with ``head_ok``'s input: a tree
        # of its own.)
        push_in = Signal(name="w_order_push_in", attrs={"keep": 1})
        m.d.comb += push_in.eq(order_push.any() & ~Cat(*(order_push[i] & ~keep[i]
                                                         for i in range(width) if early[i])).any())
        m.d.sync += [wr_ptr.eq(_advance(wr_ptr, push_in)),
                     third_ptr.eq(_advance(third_ptr, last_taken))]
        for k in range(depth):
            with m.If((wr_ptr == k) & order_room):
                m.d.sync += order[k].eq(order_push)
        third = Signal(width, name="w_order_third_entry")
        with m.Switch(third_ptr):
            for k in range(depth):
                with m.Case(k):
                    m.d.comb += third.eq(order[k])
        # Occupancy (thermometer): ``occupancy`` is the order without the AW
        # pushed in the cycle before (``pushed``), so only the pop of this
        # cycle reaches it; ``order_valid``, the occupancy now, is one LUT
        # from these flip-flops.
        occupancy = Signal(depth, name="w_order_occupancy")
        pushed = Signal(name="w_order_pushed")
        for k in range(depth):
            below = occupancy[k - 1] if k > 0 else Const(1)
            m.d.comb += order_valid[k].eq(occupancy[k] | (pushed & below))
        for k in range(depth):
            above_valid = order_valid[k + 1] if k + 1 < depth else Const(0)
            m.d.sync += occupancy[k].eq(order_valid[k] & (above_valid | ~last_taken))
        # Room two cycles ahead, from flip-flops only: the order holds at
        # most ``depth - 3`` bursts now, so at most ``depth - 1`` in two
        # cycles, with room for one more.
        room_ahead = Signal(name="w_order_room_ahead", init=1)
        m.d.sync += [pushed.eq(push_in), room_ahead.eq(~order_valid[depth - 3])]
        m.d.comb += order_room_next.eq(room_ahead)
        # The W channel's flip-flops of the next cycle, from the next state:
        # ``idle_ok`` is "AW register free and the order empty" next.  An AW
        # granted now is in the AW register next, so with the AW register
        # free next nothing is pushed now and the order is empty next if it
        # is now or its only burst ends now.
        m.d.sync += idle_ok.eq(~awvalid_next & (~order_valid[0] | (last_taken & ~order_valid[1])))
        # ``head_ok`` and ``second`` per client, written out so that they need
        # only that client's AW handshake (not whether any AW was granted):
        # on a pop the place after, else the place itself; with no such
        # entry, the client's AW granted now (for the head: unless its burst
        # is over now).
        # The three candidates are kept nets, so the pop is the last LUT's
        # select.
        second = Signal(width, name="w_order_second")
        for i in range(width):
            place_0 = Signal(name=f"w_place_0_{i}", attrs={"keep": 1})   # place 0, no pop
            place_1 = Signal(name=f"w_place_1_{i}", attrs={"keep": 1})   # place 1, no pop
            place_2 = Signal(name=f"w_place_2_{i}", attrs={"keep": 1})   # place 2, no pop
            m.d.comb += [
                # (AND/OR, not multiplexers back from the registers: no
                # clock enable, see ``_advance``.)
                place_0.eq((order_valid[0] & head_ok[i]) | (~order_valid[0] & order_push[i] & keep[i])),
                place_1.eq((order_valid[1] & second[i]) | (~order_valid[1] & order_push[i])),
                place_2.eq((order_valid[2] & third[i]) | (~order_valid[2] & order_push[i])),
                head_ok_next[i].eq(Mux(last_taken, place_1, place_0)),
            ]
            m.d.sync += [
                head_ok[i].eq(head_ok_next[i]),
                second[i].eq(Mux(last_taken, place_2, place_1)),
            ]

        # --- responses, routed by ID ---------------------------------------------
        # The master holds no response: routing R and B by ID is the only
        # logic between the slave's response and the client (a register here
        # would add a cycle to every AV=1 fence).
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

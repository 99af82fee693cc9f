"""Software models of prifence: pure Python, no simulator, never cocotb.

``disposition``  DESIGN §4 as a pure function (``decide``, ``store_fault_response``,
                 ``pq_record``, ``fq_record``): the reference the RTL benches use.
``engine``       the primitives the driver, device and checker await (``Engine``,
                 ``Observer``, ``Violation``); a cocotb adapter subclasses ``Engine``.
``tlm``          the transaction-level hardware model and ``TlmEngine``.
``device``       the PCIe PRI endpoint (DESIGN §5).
``driver``       the seed's driver flow (DESIGN §6): ``SeedDriver``, ``ReviewedDriver``,
                 ``POLICIES``.
``checker``      every invariant of DESIGN §7 (``Checker``).
``scenarios``    named scenarios and ``run_scenario(name, policy, seed)``.
``variants``     deliberately broken drivers and hardware, one or more per invariant.
``bench``        ``seeds_per_second()``.
``run``          the command line: ``python -m sw_model.run --help``.
"""

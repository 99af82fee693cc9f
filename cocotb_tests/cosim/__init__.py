"""Co-simulation of the driver, device and checker models against the RTL.

* :mod:`.engine` – :class:`~.engine.CocotbEngine`, the cocotb implementation
  of :class:`sw_model.engine.Engine` on the Verilated ``prifence_top``, and
  its bench (bus models, ``page_req`` driver, hardware monitors);
* :mod:`.scenario_tb` – the cocotb test that runs scenario seeds in one
  simulation;
* :mod:`.run` – :func:`~.run.run_rtl` / :func:`~.run.run_tlm`, the host side;
* :mod:`.trace` – the run trace behind counter-examples and timelines;
* :mod:`.bench` – :func:`~.bench.cosim_speed`, simulated cycles per second.

Importing this package does not import cocotb (only :mod:`.engine` and
:mod:`.scenario_tb`, which run inside the simulator, do).
"""

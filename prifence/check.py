"""``prifence check`` and ``prifence diff``: validate a driver fence sequence
against the RTL (or the transaction-level model), report counter-examples.

This module orchestrates; the protocol lives in :mod:`sw_model` (driver,
devices, checker, scenarios) and :mod:`cocotb_tests.cosim` (the RTL engine).

Policies and scenarios are given as a shipped name or a file:

* policy ``seed`` / ``reviewed`` (:data:`sw_model.driver.POLICIES`), or
  ``path/to/file.py:ClassName``, a subclass of
  :class:`sw_model.driver.SeedDriver`;
* scenario a name of :data:`sw_model.scenarios.SCENARIOS`, or
  ``path/to/file.py`` (``path/to/file.py:function`` to pick another name than
  ``scenario``) defining ``async def scenario(ctx)`` written like the shipped
  ones (``ctx.add_device``, ``ctx.pri_cycle``, ``ctx.teardown``,
  ``ctx.replace``, ``ctx.finish``, ...).

:class:`SpecError` is bad input (exit status 2): it is raised before any
simulation starts.
"""

import importlib.util
import inspect
import sys
from pathlib import Path

__all__ = ["SpecError", "load_policy", "load_scenario", "policy_label", "scenario_label"]


class SpecError(ValueError):
    """A policy or scenario that cannot be used (one-line message)."""


def _load_module(path, what):
    path = Path(path)
    if path.suffix != ".py":
        raise SpecError(f"{what} file {str(path)!r} is not a .py file")
    if not path.is_file():
        raise SpecError(f"{what} file {str(path)!r} does not exist")
    name = f"prifence_user_{what}_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:        # noqa: BLE001 - any import error is the user's file
        line = ""
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        raise SpecError(f"{what} file {str(path)!r} does not import{line}: "
                        f"{type(exc).__name__}: {exc}") from None
    sys.modules[name] = module
    return module


def load_policy(spec):
    """The driver class for ``spec`` (a policy name or ``file.py:ClassName``)."""
    from sw_model.driver import POLICIES, SeedDriver
    if not isinstance(spec, str) or not spec:
        raise SpecError(f"a policy is a name or file.py:ClassName, not {spec!r}")
    if spec in POLICIES:
        return POLICIES[spec]
    if ":" not in spec:
        raise SpecError(f"no policy {spec!r}: give one of {', '.join(POLICIES)} "
                        "or path/to/file.py:ClassName")
    path, _, cls_name = spec.rpartition(":")
    module = _load_module(path, "policy")
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise SpecError(f"policy file {path!r} has no class {cls_name!r}")
    if not (inspect.isclass(cls) and issubclass(cls, SeedDriver)):
        raise SpecError(f"{cls_name} in {path!r} is not a driver class "
                        "(a subclass of sw_model.driver.SeedDriver)")
    return cls


def load_scenario(spec):
    """The :func:`~sw_model.scenarios.run_scenario` name of ``spec``: a
    shipped name as it is, or a scenario file registered under
    ``file:<path>[:function]``."""
    from sw_model.scenarios import SCENARIOS
    if not isinstance(spec, str) or not spec:
        raise SpecError(f"a scenario is a name or a file, not {spec!r}")
    if spec in SCENARIOS:
        return spec
    if not spec.endswith(".py") and ".py:" not in spec:
        raise SpecError(f"no scenario {spec!r}: give one of {', '.join(SCENARIOS)} "
                        "or path/to/file.py")
    path, _, func = spec.partition(".py")
    path += ".py"
    func = func.lstrip(":") or "scenario"
    module = _load_module(path, "scenario")
    body = getattr(module, func, None)
    if body is None:
        raise SpecError(f"scenario file {path!r} has no function {func!r}")
    if not inspect.iscoroutinefunction(body):
        raise SpecError(f"{func} in {path!r} is not an async function (async def {func}(ctx))")
    key = f"file:{Path(path).resolve()}:{func}"
    SCENARIOS[key] = body
    return key


def policy_label(spec):
    return spec if ":" not in spec else spec.rpartition(":")[2]


def scenario_label(spec):
    return spec if not spec.endswith(".py") and ".py:" not in spec else Path(spec.partition(":")[0]).stem

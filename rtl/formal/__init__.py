"""Formal properties of the prifence blocks (DESIGN §3 fences, §7.6 invariants).

Each harness module sits beside the block it describes and instantiates the
shipped block; :data:`PROOFS` lists every proof the runner
(:mod:`prifence.formal`, ``make formal``) knows, with its method and depth and
the deliberately broken variant of the block (``rtl/formal/defects.py``,
test-only) that shows the property can fail.
"""

import dataclasses
from typing import Callable

__all__ = ["Proof", "PROOFS"]


@dataclasses.dataclass(frozen=True)
class Proof:
    """One proof.

    name : the property's name (also its build directory).
    statement : the guarantee, in DESIGN's words.
    harness : ``harness(block)`` builds the harness around ``block`` (None: the
        shipped block with the proof parameters).
    method : ``"prove"`` (k-induction) or ``"bmc"`` (bounded, from reset).
    depth : induction length or BMC bound, in clock cycles.
    why : why this method and depth.
    defect : what the broken variant does wrong.
    broken : ``broken()`` builds the broken variant of the block.
    fast : part of the quick subset run by ``make test``.
    cover_depth : the bound for reaching the covers (default: ``depth``).
    """
    name: str
    statement: str
    harness: Callable
    method: str
    depth: int
    why: str
    defect: str
    broken: Callable
    fast: bool = False
    cover_depth: int | None = None

    def build(self, *, defect=False):
        return self.harness(self.broken() if defect else None)


from .registry import PROOFS   # noqa: E402  (the registry needs Proof)

"""Whether torch is tracing (``torch.compile``, ``torch.export``): tensors then carry no data.

Data-dependent checks (``bool(tensor)``, conversion to NumPy) cannot run on
traced tensors.  Code that guards on data asks :func:`is_tracing` and skips
such a check while tracing; the custom operators (:mod:`learnafe.ops.operators`)
repeat the checks that protect the kernels inside their CPU implementation,
which runs on real data in compiled and exported graphs too.
"""

from __future__ import annotations

from typing import Any


def is_tracing(*tensors: Any) -> bool:
    """True under ``torch.compile``/``torch.export`` tracing, or if any argument is a fake tensor.

    Call it only when torch is in use (it imports torch).
    """
    import torch

    if torch.compiler.is_compiling():
        return True
    from torch._subclasses.fake_tensor import is_fake

    return any(isinstance(t, torch.Tensor) and is_fake(t) for t in tensors)

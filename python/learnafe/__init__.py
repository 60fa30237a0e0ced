"""LearnAFE: circuit-algorithm co-design of learnable audio front ends.

Data flows one way: audio -> front end (circuit model -> coefficients -> kernel
op -> features) -> classifier -> loss with hardware cost.

The names a user imports first are offered here::

    from learnafe import AnalogFilterBank, KeywordDataset, DSCNN, train, load_run

They load on first use (module ``__getattr__``), so ``import learnafe`` and the
command line start without importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines (or re-exports) it.
_LAZY = {
    # front ends and their spec
    "AnalogFilterBank": "learnafe.frontends",
    "DigitalFilterBank": "learnafe.frontends",
    "FrontEnd": "learnafe.frontends",
    "BankSpec": "learnafe.frontends",
    "FeatureConfig": "learnafe.frontends",
    # kernel ops
    "biquad_filterbank": "learnafe.ops",
    "filterbank_envelope": "learnafe.ops",
    "sosfilt": "learnafe.ops",
    # data and classifier
    "KeywordDataset": "learnafe.data",
    "CLASSES": "learnafe.data",
    "DSCNN": "learnafe.models",
    # training
    "TrainConfig": "learnafe.training",
    "train": "learnafe.training",
    "load_run": "learnafe.training",
    "evaluate_run": "learnafe.training",
    "finetune": "learnafe.training",
    # hardware back ends
    "calibrated_frontend": "learnafe.spice",
    "XyloA3Frontend": "learnafe.xylo.quantized",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'learnafe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

"""SPICE verification of the DSSF-BPF bank with ngspice and the SkyWater SKY130 models.

- :mod:`~learnafe.spice.locate`: find ngspice / libngspice and the SKY130 model files;
- :mod:`~learnafe.spice.models`: a small, fast model library per process corner;
- :mod:`~learnafe.spice.netlist`: transistor-level channel and bank netlists from a circuit spec;
- :mod:`~learnafe.spice.runner`: batch runs with timeouts, in parallel, raw-file parsing;
- :mod:`~learnafe.spice.characterize`: gm/Id tables of the filter's devices;
- :mod:`~learnafe.spice.fit`: s-domain biquad fit of a simulated response;
- :mod:`~learnafe.spice.verify`: AC verification of a bank against the ideal model;
- :mod:`~learnafe.spice.pipeline`: SPICE verification of a trained run, as named steps;
- :mod:`~learnafe.spice.calibrated`: the SPICE-calibrated front end;
- :mod:`~learnafe.spice.finetune`: classifier fine-tuning on the SPICE-calibrated bank;
- :mod:`~learnafe.spice.transient`: ``.tran`` of the bank on audio clips;
- :mod:`~learnafe.spice.report`: the report section of a verified run.

Importing this package is cheap: submodules are imported on use (the names
below load their module on first access, through the module ``__getattr__``).
"""

from __future__ import annotations

import importlib

_LAZY = {"calibrated_frontend": "learnafe.spice.calibrated",
         "SpiceCalibratedBank": "learnafe.spice.calibrated",
         "report_section": "learnafe.spice.report"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'learnafe.spice' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

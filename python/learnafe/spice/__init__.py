"""SPICE verification of the DSSF-BPF bank with ngspice and the SkyWater SKY130 models.

- :mod:`~learnafe.spice.locate`: find ngspice / libngspice and the SKY130 model files;
- :mod:`~learnafe.spice.models`: a small, fast model library per process corner;
- :mod:`~learnafe.spice.netlist`: transistor-level channel and bank netlists from a circuit spec;
- :mod:`~learnafe.spice.runner`: batch runs with timeouts, in parallel, raw-file parsing;
- :mod:`~learnafe.spice.characterize`: gm/Id tables of the filter's devices;
- :mod:`~learnafe.spice.fit`: s-domain biquad fit of a simulated response;
- :mod:`~learnafe.spice.verify`: AC verification of a bank against the ideal model;
- :mod:`~learnafe.spice.calibrated`: the SPICE-calibrated front end;
- :mod:`~learnafe.spice.finetune`: classifier fine-tuning on the SPICE-calibrated bank;
- :mod:`~learnafe.spice.transient`: ``.tran`` of the bank on audio clips;
- :mod:`~learnafe.spice.report`: the report section of a verified run.

Importing this package is cheap: submodules are imported on use.
"""

from learnafe.spice.calibrated import calibrated_frontend  # noqa: E402
from learnafe.spice.report import report_section  # noqa: E402

__all__ = ["calibrated_frontend", "report_section"]

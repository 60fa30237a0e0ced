"""Whether ngspice and the SKY130 models are installed, and the skip marker of the SPICE tests."""

from __future__ import annotations

import pytest

from learnafe.spice import locate

try:
    locate.find_ngspice()
    locate.sky130_models_dir()
    HAVE_SPICE = True
    WHY = ""
except locate.SpiceNotFoundError as exc:  # pragma: no cover - depends on the machine
    HAVE_SPICE = False
    WHY = str(exc)

needs_spice = pytest.mark.skipif(not HAVE_SPICE, reason=f"SPICE not installed: {WHY}")

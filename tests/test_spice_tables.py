"""The shipped SKY130 gm/Id tables: they load, carry their provenance, and a fresh
characterisation with ngspice reproduces them (skipped without ngspice / the models)."""

from __future__ import annotations

import numpy as np
import pytest

from learnafe.circuits import constants
from learnafe.circuits.transconductance import (
    SKY130_CORNERS,
    GmIdTable,
    TransconductanceModel,
    load_gm_model,
    sky130_table,
)
from spice_helpers import needs_spice


@pytest.mark.parametrize("corner", SKY130_CORNERS)
def test_shipped_tables_load_with_provenance(corner):
    t = sky130_table(corner)
    assert isinstance(t, GmIdTable)
    meta = t.table
    assert meta["corner"] == corner and meta["temperature_c"] == 27.0
    assert meta["command"] == (f"learnafe spice characterize --out sky130_gmid_{corner}.json "
                               f"--corner {corner} --temp 27")
    assert meta["simulator"].startswith("ngspice-")
    assert len(meta["models"]["sha256"]) == 64 and meta["models"]["sky130_package"]
    assert (meta["devices"]["m1"]["W_um"], meta["devices"]["m1"]["L_um"]) == (8.0, 2.0)
    assert (meta["devices"]["m2"]["W_um"], meta["devices"]["m2"]["L_um"]) == (1.0, 4.0)
    # the range training can use, up to the devices' leakage floor (about 1 pA) at the bottom
    for dev in ("m1", "m2"):
        lo, hi = t.current_range(dev)
        assert lo <= 2 * constants.I_MIN_A and hi >= 10 * constants.I_MAX_A
        assert meta["devices"][dev]["leakage_floor_a"] < lo
        # weak inversion: n = 1 / (U_T gm/Id) between 1.3 and 1.7 over 10 pA-1 nA
        n = 1 / (constants.U_T * t.gm_over_id(dev, np.array([1e-11, 1e-10, 1e-9])))
        assert np.all((n > 1.3) & (n < 1.7)), (dev, n)


def test_shipped_tables_by_name_and_in_a_spec():
    m = load_gm_model("sky130-tt")
    assert m.to_dict()["path"] == "sky130-tt"
    again = TransconductanceModel.from_dict({"kind": "gmid_table", "path": "sky130-tt"})
    i = np.array([3e-11, 2e-9])
    np.testing.assert_array_equal(again.gm("m1", i), m.gm("m1", i))
    with pytest.raises(ValueError, match="tt, ss, ff"):
        sky130_table("sf")


@needs_spice
def test_shipped_table_reproduces_a_fresh_characterisation(tmp_path):
    from learnafe.spice.characterize import characterize
    from learnafe.spice.models import model_fingerprint

    shipped = sky130_table("tt")
    fresh = GmIdTable(characterize(None, work_dir=tmp_path, corner="tt"))
    same_models = model_fingerprint("tt")["sha256"] == shipped.table["models"]["sha256"]
    currents = np.array([1e-11, 1e-10, 1e-9, 1e-8, 5e-8])
    for dev in ("m1", "m2"):
        a, b = fresh.gm_over_id(dev, currents), shipped.gm_over_id(dev, currents)
        # same model files: the same numbers up to the simulator's round-off
        np.testing.assert_allclose(a, b, rtol=1e-4 if same_models else 2e-2, err_msg=dev)


def test_output_conductance_in_the_tables_and_the_channel_model():
    from learnafe.circuits import dssf

    t = sky130_table("tt")
    assert t.has_gds and not load_gm_model("weak_inversion").has_gds  # weak inversion has no gds
    i = np.array([1e-10, 1e-9])
    # M2 (nfet W=1 L=4): Early voltage of a few volts, gds/Id about 0.1-0.15 /V
    r = t.gds("m2", i) / i
    assert np.all((r > 0.05) & (r < 0.3)), r
    # the channel model with gds against the half circuit's nodal equations solved numerically
    gm1, gm2, gds1, gds2, c1, c2 = 2e-9, 1.5e-8, 3e-12, 8e-10, 0.8e-12, 1.1e-12
    beta, d1, d0 = dssf.s_coefficients(gm1, gm2, c1, c2, gds1, gds2)
    for f in (30.0, 300.0, 3000.0):
        s = 2j * np.pi * f
        # unknowns (v_d, v_s), input 1 V; KCL at drain and source of one half (2 C1, 2 C2 to ground)
        a = np.array([[-(2 * s * c1 + gds1), gm1 + gds1], [gm2 - gds1, gm1 + gds1 + gds2 + 2 * s * c2]])
        v_d = np.linalg.solve(a, np.array([gm1, gm1]))[0]
        zero = 1 + gds2 / (2 * c2 * s)  # the numerator zero the model drops
        assert beta * s / (s * s + d1 * s + d0) * zero == pytest.approx(v_d, rel=1e-9)
    # without gds the ideal coefficients, unchanged
    assert dssf.s_coefficients(gm1, gm2, c1, c2) == (-gm1 / (2 * c1), gm1 / (2 * c2), gm1 * gm2 / (4 * c1 * c2))


def test_gds_is_differentiable_like_gm():
    import torch

    t = sky130_table("tt")
    i = torch.tensor([3e-11, 4e-10, 7e-9], dtype=torch.float64, requires_grad=True)
    g = t.gds("m2", i)
    np.testing.assert_allclose(g.detach().numpy(), t.gds("m2", i.detach().numpy()), rtol=1e-12)
    g.sum().backward()
    h = 1e-6 * i.detach()
    fd = (t.gds("m2", (i.detach() + h).numpy()) - t.gds("m2", (i.detach() - h).numpy())) / (2 * h.numpy())
    np.testing.assert_allclose(i.grad.numpy(), fd, rtol=1e-4)

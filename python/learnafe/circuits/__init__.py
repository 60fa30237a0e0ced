"""The DSSF band-pass filter as a circuit: transconductance, transfer function, cost, s->z mapping.

* :mod:`~learnafe.circuits.constants` -- physical and SKY130 process constants (SI, with sources);
* :mod:`~learnafe.circuits.transconductance` -- :class:`WeakInversion`, :class:`GmIdTable`, the shipped
  SKY130 tables (:func:`sky130_table`);
* :mod:`~learnafe.circuits.dssf` -- (I1, I2, C1, C2) -> gm, w0, Q, gain, H(s), and the inverse design;
* :mod:`~learnafe.circuits.cost` -- power, capacitor area, kT/C output noise;
* :mod:`~learnafe.circuits.discretize` -- bilinear (pre-warped), matched-z, impulse invariance,
  magnitude-matched;
* :mod:`~learnafe.circuits.variation` -- the settings of kT/C noise, device mismatch and process
  corners (:class:`~learnafe.circuits.variation.NoiseConfig`, ``MismatchConfig``, ``CornerConfig``).
"""

from learnafe.circuits import constants
from learnafe.circuits.cost import cap_area_um2, channel_cap_area_um2, channel_power_w, output_noise_variance, power_w
from learnafe.circuits.discretize import METHODS, digital_response, discretize, noise_gain
from learnafe.circuits.dssf import (
                                    ChannelParameters,
                                    analog_response,
                                    band_edges,
                                    channel_parameters,
                                    design_channel,
                                    frequency_response,
                                    q_for_crossing,
                                    s_coefficients,
                                    s_coefficients_from_w0_q,
)
from learnafe.circuits.transconductance import (
                                    GmIdTable,
                                    TransconductanceModel,
                                    WeakInversion,
                                    load_gm_model,
                                    sky130_table,
)

__all__ = ["constants", "cap_area_um2", "channel_cap_area_um2", "channel_power_w", "output_noise_variance",
           "power_w", "METHODS", "digital_response", "discretize", "noise_gain", "ChannelParameters",
           "analog_response", "band_edges", "channel_parameters", "design_channel", "frequency_response",
           "q_for_crossing", "s_coefficients", "s_coefficients_from_w0_q", "GmIdTable",
           "TransconductanceModel", "WeakInversion", "load_gm_model", "sky130_table"]

"""Hardware cost of a DSSF-BPF bank: supply power, capacitor area and thermal noise.

* Power ``P = VDD * K_BRANCH * sum(I1 + I2)`` (W): each of the two half circuits
  of a channel draws I1 + I2 from VDD.
* Area ``A = sum(C1 + C2) / C_DENSITY`` (um^2): one floating C1 and one floating
  C2 per channel, MIM capacitor density.
* Noise: the integrated output noise of a channel from the shot noise of its two
  transistors (see :func:`output_noise_variance`), which scales as kT/C.

Constants and their sources are in :mod:`learnafe.circuits.constants`.
"""

from __future__ import annotations

from learnafe.circuits import constants


def power_w(i1, i2, vdd: float = constants.VDD_V, k_branch: float = constants.K_BRANCH):
    """Supply power (W) of a bank: ``vdd * k_branch * sum(I1 + I2)`` over channels."""
    return vdd * k_branch * (i1 + i2).sum()


def channel_power_w(i1, i2, vdd: float = constants.VDD_V, k_branch: float = constants.K_BRANCH):
    """Per-channel supply power (W)."""
    return vdd * k_branch * (i1 + i2)


def cap_area_um2(c1, c2, density_f_per_m2: float = constants.C_DENSITY_F_PER_M2):
    """Capacitor area (um^2) of a bank: ``sum(C1 + C2) / density``."""
    return (c1 + c2).sum() / (density_f_per_m2 * constants.M2_PER_UM2)


def channel_cap_area_um2(c1, c2, density_f_per_m2: float = constants.C_DENSITY_F_PER_M2):
    """Per-channel capacitor area (um^2)."""
    return (c1 + c2) / (density_f_per_m2 * constants.M2_PER_UM2)


def output_noise_variance(i1, i2, c1, c2, gm1, gm2):
    """Integrated differential output noise voltage variance (V^2) of each channel.

    Noise sources: the channel shot noise of M1 and M2 in each half circuit,
    one-sided current PSD ``2 q I`` (weak inversion; the bias sources are taken as
    ideal, as in the SPICE netlist).  Solving the half-circuit nodes, M1's noise
    current reaches the output through ``2 s C2 / D(s)`` and M2's through
    ``gm1 / D(s)``, with ``D(s) = 4 C1 C2 s^2 + 2 C1 gm1 s + gm1 gm2``.  Integrating
    ``|T(j 2 pi f)|^2`` over f in [0, inf) and adding the two independent halves::

        var = q I1 C2 / (2 C1^2 gm1) + q I2 / (2 C1 gm2)

    which in weak inversion (I/gm = n U_T) is ``n k T (1 + C2/C1) / (2 C1)``: the
    kT/C noise of the filter (temperature enters through gm).
    """
    q = constants.Q_ELECTRON
    return q * i1 * c2 / (2 * c1 * c1 * gm1) + q * i2 / (2 * c1 * gm2)


def output_noise_transfer_functions(gm1, gm2, c1, c2):
    """s-domain (numerator, denominator) polynomials, highest power first, of the two noise paths.

    Returns ``((num_m1, den), (num_m2, den))`` from a noise current of M1 (source to
    drain) and of M2 (source node to ground) to one half circuit's output voltage.
    Used by the tests to check :func:`output_noise_variance` by numerical integration.
    """
    den = (4 * c1 * c2, 2 * c1 * gm1, gm1 * gm2)
    return ((2 * c2, 0.0), den), ((0.0, -gm1), den)


__all__ = ["power_w", "channel_power_w", "cap_area_um2", "channel_cap_area_um2",
           "output_noise_variance", "output_noise_transfer_functions"]

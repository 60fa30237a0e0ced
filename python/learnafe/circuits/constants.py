"""Physical and process constants of the circuit model, in SI units.

Every number the circuit model uses lives here, with its source.  Process
numbers refer to the SkyWater SKY130 130 nm process (1.8 V core devices, MIM
capacitor ``sky130_fd_pr__cap_mim_m3_1``) that the SPICE verification uses.
"""

from __future__ import annotations

#: Boltzmann constant, J/K.  Exact by the 2019 SI definition (CODATA 2018).
K_BOLTZMANN = 1.380649e-23

#: Elementary charge, C.  Exact by the 2019 SI definition (CODATA 2018).
Q_ELECTRON = 1.602176634e-19

#: Operating temperature, K (27 degC rounded, the SPICE default ``.temp 27``).
TEMPERATURE_K = 300.0


def thermal_voltage(temperature_k: float = TEMPERATURE_K) -> float:
    """U_T = kT/q in volts (25.852 mV at 300 K)."""
    if not temperature_k > 0:
        raise ValueError(f"temperature_k must be > 0 K, got {temperature_k!r}")
    return K_BOLTZMANN * temperature_k / Q_ELECTRON


#: Thermal voltage at TEMPERATURE_K, V.
U_T = thermal_voltage()

#: Weak-inversion slope factor n of the filter transistors (dimensionless).
#: Extracted once from ngspice DC sweeps of SKY130 (tt corner, 27 degC, bulk
#: tied to source, gm/Id = d ln(Id) / dV_GS): nfet_01v8 W=1 L=1 at V_DS = 0.9 and
#: 1.25 V gives n = 1.34-1.38 between 0.1 nA and 1 nA; pfet_01v8 W=8 L=1 at
#: |V_DS| = 0.9 V gives n = 1.34 at 0.1 nA and 1.45 at 1 nA.  That is the
#: current range of a 100 Hz-8 kHz bank with 1 pF capacitors; n rises to about
#: 1.5 at 10 pA and to 1.5-1.8 at 10 nA.  A per-device gm/Id table
#: (``learnafe spice characterize``, :class:`~learnafe.circuits.GmIdTable`)
#: replaces this single number when accuracy at the band edges matters.
SLOPE_FACTOR_N = 1.36

#: Supply voltage, V: SKY130 1.8 V core devices (nfet_01v8 / pfet_01v8).
VDD_V = 1.8

#: Number of supply branches per channel that each carry I1 + I2.  The DSSF-BPF
#: is differential: each of its two half circuits draws I1 + I2 from VDD (the
#: source-follower bias I1 + I2 into M1's source, returned through M1 (I1) and
#: M2 (I2)), so P = VDD * 2 * (I1 + I2) per channel.
K_BRANCH = 2

#: MIM capacitor density, F/m^2 (2 fF/um^2): SKY130 ``cap_mim_m3_1``, process
#: documentation value; the ngspice model gives 0.98 pF for W = L = 22 um
#: (2.03 fF/um^2 including the perimeter term).
C_DENSITY_F_PER_M2 = 2.0e-3

#: Square metres per square micrometre.
M2_PER_UM2 = 1.0e-12

#: Smallest capacitor the learnable bank may use, F.  50 fF is a 5 um x 5 um
#: MIM capacitor, about the smallest whose 1-sigma mismatch stays near 1 %
#: (SKY130 MIM matching) and whose value is not dominated by routing parasitics.
C_MIN_F = 50e-15

#: Largest capacitor the learnable factor may reach, F (100 pF = 50,000 um^2,
#: far beyond any sensible audio filter; a sanity range, not a device limit).
C_MAX_F = 100e-12

#: Smallest bias current, A.  10x above the off-state leakage of the SKY130
#: 1.8 V devices at 27 degC (a few fA/um for nfet_01v8), so the current
#: source, not leakage, sets the bias.
I_MIN_A = 1e-12

#: Largest bias current, A: the edge of weak inversion (inversion coefficient
#: about 0.1) of nfet_01v8 W=1 L=1, whose specific current 2 n mu Cox U_T^2 W/L
#: is about 0.5 uA; the sweep above shows gm/Id already down to 23 /V at 50 nA.
I_MAX_A = 50e-9

#: Highest allowed centre frequency as a fraction of the sample rate (below
#: the Nyquist frequency 0.5 fs with margin for the bilinear warping).
F0_MAX_FRACTION_OF_FS = 0.45

#: Range (A) a bias current of a bank spec must lie in to be read at all: a
#: units check (a value in nA or pA typed as a plain number lands outside),
#: not a design limit.  Much wider than [I_MIN_A, I_MAX_A], the learnable
#: bank's bounds, so a spec written with other bounds still reads.
SPEC_I_RANGE_A = (1e-14, 1e-4)

#: Range (F) a capacitor of a bank spec must lie in to be read at all (a units
#: check, like SPEC_I_RANGE_A; wider than [C_MIN_F, C_MAX_F]).
SPEC_C_RANGE_F = (1e-16, 1e-9)

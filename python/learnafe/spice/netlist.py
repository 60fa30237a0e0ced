"""Transistor-level netlists of the DSSF band-pass filter bank (SKY130).

One channel is a differential super-source follower.  Each half:

- ``M1`` p-channel source follower (``sky130_fd_pr__pfet_01v8`` W=8 L=2, wide
  enough to stay in weak inversion at nA), gate = input, bulk tied to its
  source (no body effect), source node ``s``, drain node ``d`` = output;
- ``M2`` n-channel feedback device (``sky130_fd_pr__nfet_01v8`` W=1 L=4),
  gate on ``d``, drain on ``s``, source and bulk at ground;
- ideal bias sources: ``I1`` pulled out of ``d`` (M1's current) and
  ``I1 + I2`` pushed into ``s`` from VDD (M2 carries the difference ``I2``).

``C1`` sits between the two drains (the differential output), ``C2`` between the
two sources.

Half-circuit equivalence.  With a purely differential input (+v/2, -v/2) the
two halves move in anti-phase, so the mid-point of each floating capacitor is
an AC ground: ``C1`` between the drains looks like ``2 C1`` from each drain to
ground, ``C2`` like ``2 C2`` from each source.  Small-signal KCL of one half
(M1: ``i1 = gm1 (v_s - v_in)``, M2: ``i2 = gm2 v_d``, ideal sources carry no
signal, output conductances neglected):

    drain:  gm1 (v_s - v_in) = s (2 C1) v_d
    source: gm1 (v_s - v_in) + gm2 v_d + s (2 C2) v_s = 0

which gives ``v_d / v_in = -(gm1/(2 C1)) s / (s^2 + (gm1/(2 C2)) s +
gm1 gm2/(4 C1 C2))``.  The differential output ``v_dp - v_dn`` over the
differential input has the same H(s): exactly the model of
:mod:`learnafe.circuits`.  ``topology="half"`` simulates one half with
``2 C1`` and ``2 C2`` to ground (half the work); ``topology="differential"``
(the default) simulates the real circuit.  Supply current: ``I1 + I2`` per
half, ``2 (I1 + I2)`` per differential channel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from learnafe.circuits.constants import VDD_V
from learnafe.frontends.spec import BankSpec, ChannelSpec
from learnafe.spice.models import MIM_CAP, NFET, PFET, check_corner, lib_statement, mim_side_um

# Device sizes (um) and bias voltages (V) of the transistor-level channel.
# Channel lengths above the minimum: the output conductances of M1 (counted
# twice) and M2 add damping (2 gds1 + gds2) / gm1 to the s term of the
# denominator, which lowers Q and the peak gain by the same fraction, and it
# grows with I2/I1 = Q^2/gain.  At a conventional Q of 3.4 and 1 kHz, measured
# in tt: M1 8/1 + M2 1/1 gives -7.9 % Q, M1 8/1 + M2 1/4 -5.5 %, M1 8/2 + M2 1/4
# -4.5 % (f0 -1.0 %); a 16/4 follower overshoots (+4.7 % Q at 8 kHz) through its
# gate capacitance.  W=8 keeps the p-channel follower in weak inversion at nA.
M1_W_UM, M1_L_UM = 8.0, 2.0
M2_W_UM, M2_L_UM = 1.0, 4.0
# Input common mode: M1's source sits one V_SG (about 0.4 V at nA) above it and
# its drain one M2 V_GS (about 0.35 V) above ground, so 0.6 V keeps M1's
# V_SD (about 0.6 V) and M2's V_DS (about 1 V) well in saturation.
VCM_V = 0.6

TOPOLOGIES = ("differential", "half")
CAP_KINDS = ("ideal", "mim")
#: One channel of a spec (index, I1, I2, C1, C2 and the derived f0_hz, q, gain).
Channel = ChannelSpec


def load_spec(spec: str | Path | Mapping[str, Any] | BankSpec) -> BankSpec:
    """Read and check a circuit spec (``learnafe-bank/1``: a path, a dict or a :class:`BankSpec`).

    Parse it once and pass the result on: every function here also takes the
    :class:`BankSpec`.  A hand-written spec may leave out ``"format"``.
    """
    if isinstance(spec, BankSpec):
        return spec
    if isinstance(spec, Mapping):
        return BankSpec.from_dict(spec, require_format=False)
    return BankSpec.load(spec, require_format=False)


def channels_of(spec: str | Path | Mapping[str, Any] | BankSpec) -> list[Channel]:
    """The checked channels of a spec (units and ranges: :class:`learnafe.frontends.spec.ChannelSpec`)."""
    return list(load_spec(spec).channels)


def _g(x: float) -> str:
    return f"{x:.10g}"


def _cap(name: str, a: str, b: str, value: float, caps: str) -> str:
    if caps == "ideal":
        return f"{name} {a} {b} {_g(value)}"
    side = mim_side_um(value)
    return f"X{name} {a} {b} {MIM_CAP} W={side:.4f} L={side:.4f}"


def channel_block(ch: Channel, *, topology: str = "differential", caps: str = "ideal",
                  inp: str = "inp", inn: str = "inn", suffix: str = "") -> list[str]:
    """Netlist lines of one channel (inputs ``inp``/``inn``; supply node ``vdd``).

    Nodes: ``dp{suffix}``/``dn{suffix}`` drains (outputs), ``sp``/``sn`` sources;
    the half circuit uses only the ``p`` side.
    """
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology={topology!r}; use one of {', '.join(TOPOLOGIES)}")
    if caps not in CAP_KINDS:
        raise ValueError(f"caps={caps!r}; use one of {', '.join(CAP_KINDS)}")
    x = suffix
    sides = [("p", inp)] if topology == "half" else [("p", inp), ("n", inn)]
    lines = [f"* channel {ch.index}: I1={ch.I1:.4g} A I2={ch.I2:.4g} A "
             f"C1={ch.C1:.4g} F C2={ch.C2:.4g} F ({topology}, {caps} capacitors)"]
    for side, gate in sides:
        d, s = f"d{side}{x}", f"s{side}{x}"
        lines += [
            f"XM1{side}{x} {d} {gate} {s} {s} {PFET} W={M1_W_UM:g} L={M1_L_UM:g}",
            f"XM2{side}{x} {s} {d} 0 0 {NFET} W={M2_W_UM:g} L={M2_L_UM:g}",
            f"IT{side}{x} vdd {s} DC {_g(ch.I1 + ch.I2)}",
            f"IB{side}{x} {d} 0 DC {_g(ch.I1)}",
        ]
    if topology == "half":
        lines += [_cap(f"C1p{x}", f"dp{x}", "0", 2 * ch.C1, caps),
                  _cap(f"C2p{x}", f"sp{x}", "0", 2 * ch.C2, caps)]
    else:
        lines += [_cap(f"C1{x}", f"dp{x}", f"dn{x}", ch.C1, caps),
                  _cap(f"C2{x}", f"sp{x}", f"sn{x}", ch.C2, caps)]
    return lines


def _header(title: str, library: str | Path, corner: str, temperature_c: float) -> list[str]:
    return [f"* {title}", "* generated by learnafe.spice.netlist", lib_statement(library, corner),
            f".temp {temperature_c:g}", f"VDD vdd 0 DC {VDD_V:g}"]


def ac_netlist(ch: Channel, *, library: str | Path, corner: str = "tt",
               topology: str = "differential", caps: str = "ideal",
               f_start: float = 1.0, f_stop: float = 1e6, points_per_decade: int = 100,
               temperature_c: float = 27.0) -> str:
    """An ``.ac`` netlist of one channel with a 1 V differential AC input.

    Two plots: the operating point (node voltages, ``i(vdd)``: the supply
    current) and the AC response (``v(dp)``, ``v(dn)``, ``v(sp)``, ``v(sn)``).
    """
    check_corner(corner)
    if not 0 < f_start < f_stop:
        raise ValueError(f"need 0 < f_start < f_stop, got f_start={f_start}, f_stop={f_stop}")
    lines = _header(f"LearnAFE DSSF-BPF channel {ch.index} AC", library, corner, temperature_c)
    if topology == "half":
        lines.append(f"VINP inp 0 DC {VCM_V:g} AC 1")
        saves = "v(dp) v(sp)"
    else:
        lines += [f"VINP inp 0 DC {VCM_V:g} AC 0.5", f"VINN inn 0 DC {VCM_V:g} AC 0.5 180"]
        saves = "v(dp) v(dn) v(sp) v(sn)"
    lines += channel_block(ch, topology=topology, caps=caps)
    lines += [f".save {saves} i(vdd)", ".op",
              f".ac dec {int(points_per_decade)} {_g(f_start)} {_g(f_stop)}",
              ".end", ""]
    return "\n".join(lines)


def op_netlist(ch: Channel, *, library: str | Path, corner: str = "tt",
               topology: str = "differential", caps: str = "ideal",
               temperature_c: float = 27.0) -> str:
    """An ``.op`` netlist of one channel: node voltages and supply current."""
    lines = _header(f"LearnAFE DSSF-BPF channel {ch.index} operating point", library, corner,
                    temperature_c)
    lines.append(f"VINP inp 0 DC {VCM_V:g}")
    if topology != "half":
        lines.append(f"VINN inn 0 DC {VCM_V:g}")
    lines += channel_block(ch, topology=topology, caps=caps)
    lines += [".op", ".end", ""]
    return "\n".join(lines)


def bank_tran_netlist(channels: Iterable[Channel], *, library: str | Path, input_file: str,
                      t_stop: float, t_step: float, amplitude_v: float, corner: str = "tt",
                      topology: str = "differential", caps: str = "ideal",
                      temperature_c: float = 27.0) -> str:
    """A ``.tran`` netlist of the whole bank driven by an audio file.

    ``input_file`` is an XSPICE ``filesource`` text file (``time value`` per
    line, values in [-1, 1]); it is scaled to ``amplitude_v`` volts
    differential around the input common mode.  The internal step is limited
    to ``t_step``; the simulator's time points are irregular (interpolate them
    onto a grid after parsing).
    """
    check_corner(corner)
    if not (t_step > 0 and t_stop > t_step):
        raise ValueError(f"need 0 < t_step < t_stop, got t_step={t_step}, t_stop={t_stop}")
    if not amplitude_v > 0:
        raise ValueError(f"amplitude_v must be positive, got {amplitude_v}")
    chans = list(channels)
    lines = _header(f"LearnAFE DSSF-BPF bank transient ({len(chans)} channels)", library,
                    corner, temperature_c)
    lines += [
        f"VCM cm 0 DC {VCM_V:g}",
        "AIN %v([ain]) audio_in",
        f'.model audio_in filesource (file="{input_file}" amploffset=[0] amplscale=[1] '
        "timeoffset=0 timescale=1 timerelative=false amplstep=false)",
        "RAIN ain 0 1e9",
        f"EINP inp cm ain 0 {_g(amplitude_v / 2)}",
    ]
    if topology != "half":
        lines.append(f"EINN inn cm ain 0 {_g(-amplitude_v / 2)}")
    saves = ["v(ain)"]
    for ch in chans:
        lines += channel_block(ch, topology=topology, caps=caps, suffix=f"_{ch.index}")
        saves.append(f"v(dp_{ch.index})")
        if topology != "half":
            saves.append(f"v(dn_{ch.index})")
    # Gear integration: trapezoidal integration rings on the top channels at
    # steps near t_step; XSPICE sources lower trtol to 1 (7x more steps) unless
    # xtrtol restores the default.
    lines += [".options method=gear xtrtol=7", f".save {' '.join(saves)}",
              f".tran {_g(t_step)} {_g(t_stop)} 0 {_g(t_step)}", ".end", ""]
    return "\n".join(lines)

"""``learnafe spice ...`` (characterise, netlist, ac) and ``learnafe verify RUN``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from learnafe.gate import add_arguments as add_gate_arguments
from learnafe.gate import markdown, thresholds_from_args

log = logging.getLogger("learnafe.spice")


def _sim_options(p: argparse.ArgumentParser, circuit: bool = True) -> None:
    p.add_argument("--corner", default="tt",
                   help="SKY130 corner: tt ff ss sf fs (devices) or ll hh hl lh (passives) [tt]")
    if circuit:
        p.add_argument("--topology", choices=("differential", "half"), default="differential",
                       help="simulate the differential channel or its half circuit [differential]")
        p.add_argument("--caps", choices=("ideal", "mim"), default="ideal",
                       help="ideal capacitors or SKY130 MIM capacitors [ideal]")
    p.add_argument("--workers", type=int, default=2, help="simulations run at once [2]")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per simulation [120]")


def _characterize(args) -> int:
    from learnafe.spice.characterize import characterize, slope_factor

    out = Path(args.out)
    table = characterize(out, work_dir=Path(args.work_dir or out.with_suffix("")),
                         corner=args.corner, temperature_c=args.temp, workers=args.workers,
                         timeout=args.timeout)
    for dev in ("m1", "m2"):
        d = table["devices"][dev]
        ns = ", ".join(f"{i:.0e} A: {slope_factor(table, dev, i):.3f}" for i in (1e-11, 1e-10, 1e-9, 1e-8))
        print(f"{dev} {d['model']} W={d['W_um']:g} L={d['L_um']:g}: slope factor n at {ns}")
    print(f"wrote {out}")
    return 0


def _mismatch(args) -> int:
    from learnafe.spice.mismatch import write_mismatch_file

    out = Path(args.out)
    d = write_mismatch_file(out, work_dir=Path(args.work_dir or out.with_suffix("")),
                            n=args.samples, seed=args.seed)
    mc = d["monte_carlo_check"]
    for dev in ("m1", "m2"):
        x = d["devices"][dev]
        print(f"{dev} {x['model']} W={x['W_um']:g} L={x['L_um']:g}: sigma_Vth "
              f"{x['sigma_vth_v'] * 1e3:.3f} mV ({x['source']['parameter']} = "
              f"{x['matching_constant_v_um'] * 1e3:g} mV um, geometry factor "
              f"{x['geometry_factor']:.4f}); Monte Carlo ({mc['n']} samples): "
              f"{mc[dev]['sigma_vth_v'] * 1e3:.3f} mV")
    m = d["mim"]
    print(f"MIM {m['model']}: sw_mm_cmim = {m['matching_constant_um']:g} um; 5x5 um sigma_C/C "
          f"{100 * mc['mim']['expected_sigma_rel']:.4f} %, Monte Carlo "
          f"{100 * mc['mim']['sigma_rel']:.4f} %")
    print(f"wrote {out}")
    return 0


def _netlist(args) -> int:
    from learnafe.spice.models import write_library
    from learnafe.spice.netlist import ac_netlist, bank_tran_netlist, channels_of, op_netlist

    chans = channels_of(args.spec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lib = write_library(out)
    opts = dict(library=lib, corner=args.corner, topology=args.topology, caps=args.caps)
    written = []
    if args.analysis == "tran":
        p = out / "bank_tran.cir"
        p.write_text(bank_tran_netlist(chans, input_file=args.input_file, t_stop=args.t_stop,
                                       t_step=args.t_step, amplitude_v=args.amplitude, **opts))
        written.append(p)
    else:
        for ch in chans:
            if args.channel is not None and ch.index != args.channel:
                continue
            p = out / f"ch{ch.index:02d}_{args.analysis}.cir"
            text = (ac_netlist(ch, f_start=args.f_start, f_stop=args.f_stop, **opts)
                    if args.analysis == "ac" else op_netlist(ch, **opts))
            p.write_text(text)
            written.append(p)
    if not written:
        raise ValueError(f"--channel {args.channel} is not a channel of {args.spec} "
                         f"(0..{len(chans) - 1})")
    for p in written:
        print(p)
    return 0


def _ac(args) -> int:
    from learnafe.spice.report import ac_table
    from learnafe.spice.verify import AcOptions, ac_verify

    r = ac_verify(args.spec, args.out, AcOptions(
        gm_model=args.gmid, corner=args.corner, topology=args.topology, caps=args.caps,
        workers=args.workers, timeout=args.timeout, points_per_decade=args.points_per_decade,
        progress=not args.quiet))
    print(ac_table(r))
    print(f"wrote {Path(args.out) / 'ac.json'} and {Path(args.out) / 'ac_overlay.png'}")
    return 0


def _noise(args) -> int:
    from learnafe.spice.noise import NoiseOptions, noise_verify
    from learnafe.spice.report import noise_table

    r = noise_verify(args.spec, args.out, NoiseOptions(
        gm_model=args.gmid, corner=args.corner, topology=args.topology, caps=args.caps,
        workers=args.workers, timeout=args.timeout, progress=not args.quiet,
        band=None if args.band is None else tuple(args.band)))
    print(noise_table(r))
    print(f"wrote {Path(args.out) / 'noise.json'}")
    return 0


def _verify(args) -> int:
    from learnafe.spice.pipeline import VerifyOptions, verify_run
    from learnafe.spice.report import ac_table

    r = verify_run(args.run, args.out, VerifyOptions(
        corner=args.corner, topology=args.topology, caps=args.caps, workers=args.workers,
        timeout=args.timeout, finetune=not args.no_finetune, epochs=args.epochs,
        transient=not args.no_transient, clips=args.clips, clip_seconds=args.clip_seconds,
        tran_step=args.tran_step, tran_amplitude=args.tran_amplitude, noise=not args.no_noise,
        clip_data=args.clip_data, seed=args.seed, force=args.force,
        gate=thresholds_from_args(args), progress=not args.quiet))
    out = Path(r["out_dir"])
    print(ac_table(json.loads((out / "ac.json").read_text())))
    vc = r["vs_characterised"]
    print(f"against the characterised gm/Id table: max |f0 error| {vc['max_abs_f0_error_pct']:.2f} %, "
          f"max |Q error| {vc['max_abs_q_error_pct']:.2f} %")
    if r["noise_summary"]:
        n = r["noise_summary"]
        print(f"noise: SPICE / kT/C model (rms) {n['min_ratio_spice_to_model']:.2f} ... "
              f"{n['max_ratio_spice_to_model']:.2f}")
    acc = r["accuracy"]
    if acc:
        m = acc["mean"]
        after = ("" if m["spice_after"] is None
                 else f", after {acc['epochs']} epochs {m['spice_after']:.4f}")
        print(f"mean accuracy (test split): ideal {m['ideal']:.4f}, SPICE before fine-tuning "
              f"{m['spice_before']:.4f}{after}")
        held = acc.get("held_out")
        if held and len(held["sets"]) > 1:
            p = held["pooled"]
            print(f"mean accuracy (pooled held-out sets, {p['n']} clips): ideal {p['ideal']['mean_accuracy']:.4f}, "
                  f"SPICE before fine-tuning {p['spice_before']['mean_accuracy']:.4f}")
    if r["transient_summary"]:
        t = r["transient_summary"]
        print(f"transient: vs its continuous model (fitted) {100 * t['mean_vs_fitted_continuous']:.2f} %, "
              f"vs the calibrated bank {100 * t['mean_waveform_rel_rms_error']:.2f} %, "
              f"envelope error {100 * t['mean_envelope_rel_error']:.2f} %")
    print(markdown(r["gate"], "SPICE-calibrated bank").rstrip())
    print(f"wrote {out / 'verify.json'} ({r['seconds']['total']:.0f} s)")
    return 3 if (args.strict_gate and not r["gate"]["passed"]) else 0


def register(subparsers) -> None:
    sp = subparsers.add_parser("spice", help="SPICE (ngspice + SKY130) netlists and simulations",
                               description="Transistor-level simulation of the DSSF-BPF bank.")
    sub = sp.add_subparsers(dest="spice_command", metavar="SUBCOMMAND")
    sp.set_defaults(func=lambda a: (sp.print_help(), 2)[1])
    _add_characterize(sub)
    _add_mismatch(sub)
    _add_netlist(sub)
    _add_ac(sub)
    _add_noise(sub)
    _add_verify(subparsers)


def _add_characterize(sub) -> None:
    """``learnafe spice characterize``: the gm/Id table of the devices."""
    c = sub.add_parser("characterize", help="gm/Id table of the filter's devices (DC sweeps)",
                       description="Sweep M1 (pfet source follower) and M2 (nfet) and write the "
                                   "learnafe-gmid/1 table that learnafe.circuits.GmIdTable loads.")
    c.add_argument("--out", default="gmid.json", help="output JSON [gmid.json]")
    c.add_argument("--work-dir", help="where netlists and raw files go [OUT without .json]")
    c.add_argument("--temp", type=float, default=27.0, help="temperature in degC [27]")
    _sim_options(c, circuit=False)
    c.set_defaults(func=_characterize)


def _add_mismatch(sub) -> None:
    """``learnafe spice mismatch``: SKY130 device and capacitor mismatch."""
    m = sub.add_parser("mismatch", help="SKY130 mismatch of the filter's devices and MIM capacitors",
                       description="Read the V_th mismatch of M1 and M2 and the MIM capacitor "
                                   "matching constant from the SKY130 model files, check them with "
                                   "an ngspice Monte Carlo run, and write the learnafe-mismatch/1 "
                                   "file that learnafe.circuits.mismatch.sky130_mismatch reads.")
    m.add_argument("--out", default="sky130_mismatch.json", help="output JSON [sky130_mismatch.json]")
    m.add_argument("--work-dir", help="where the Monte Carlo netlist goes [OUT without .json]")
    m.add_argument("--samples", type=int, default=1000, help="Monte Carlo instances per device [1000]")
    m.add_argument("--seed", type=int, default=1, help="simulator random seed [1]")
    m.set_defaults(func=_mismatch)


def _add_netlist(sub) -> None:
    """``learnafe spice netlist``: the netlists of a circuit spec."""
    n = sub.add_parser("netlist", help="write the transistor-level netlists of a circuit spec",
                       description="Write per-channel .ac/.op netlists or the whole-bank .tran "
                                   "netlist of a learnafe-bank/1 spec (with the model library).")
    n.add_argument("spec", help="circuit spec JSON (a run's bank.json)")
    n.add_argument("--out", required=True, help="output directory")
    n.add_argument("--analysis", choices=("ac", "op", "tran"), default="ac", help="analysis the netlist is written for [ac]")
    n.add_argument("--channel", type=int, help="only this channel (ac/op)")
    n.add_argument("--f-start", type=float, default=1.0, help="AC start (Hz) [1]")
    n.add_argument("--f-stop", type=float, default=1e6, help="AC stop (Hz) [1e6]")
    n.add_argument("--input-file", default="input.txt",
                   help="tran: filesource text file (time value per line) [input.txt]")
    n.add_argument("--t-stop", type=float, default=1.0, help="tran: stop time (s) [1]")
    n.add_argument("--t-step", type=float, default=5e-6, help="tran: max step (s) [5e-6]")
    n.add_argument("--amplitude", type=float, default=1e-3,
                   help="tran: volts (differential) for input value 1.0 [1e-3]")
    _sim_options(n)
    n.set_defaults(func=_netlist)


def _add_ac(sub) -> None:
    """``learnafe spice ac``: AC verification of every channel."""
    a = sub.add_parser("ac", help="AC-verify every channel of a spec against the ideal model",
                       description="Simulate each channel (.op + .ac), fit a biquad, compare f0, Q, "
                                   "gain and power with the ideal model; writes ac.json, "
                                   "ac_response.npz, ac_overlay.png and all netlists/raw files.")
    a.add_argument("spec", help="circuit spec JSON")
    a.add_argument("--out", required=True, help="output directory")
    a.add_argument("--gmid", help="gm/Id table for the ideal model [the spec's gm_model]")
    a.add_argument("--points-per-decade", type=int, default=100, help="AC frequency points per decade [100]")
    _sim_options(a)
    a.set_defaults(func=_ac)


def _add_noise(sub) -> None:
    """``learnafe spice noise``: ngspice .noise of every channel."""
    z = sub.add_parser("noise", help="ngspice .noise of every channel against the kT/C model",
                       description="Simulate each channel's output noise (.noise, all device noise "
                                   "sources of the SKY130 models), integrate it over the band the "
                                   "classifier sees and compare it with the kT/C model; writes "
                                   "noise.json and the netlists / raw files.")
    z.add_argument("spec", help="circuit spec JSON")
    z.add_argument("--out", required=True, help="output directory")
    z.add_argument("--gmid", help="gm model of the kT/C reference [the spec's gm_model]")
    z.add_argument("--band", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="integration band in Hz [20 Hz to half the spec's sample rate]")
    _sim_options(z)
    z.set_defaults(func=_noise)


def _add_verify(subparsers) -> None:
    """``learnafe verify``: SPICE verification of a trained run."""
    v = subparsers.add_parser(
        "verify", help="SPICE-verify a trained run: AC, noise, calibrated bank, accuracy, transient, gate",
        description="Characterise the devices, AC-verify the run's bank against its own model, "
                    "simulate each channel's noise, build the SPICE-calibrated front end (with the "
                    "circuit's noise), measure the accuracy before and after fine-tuning the "
                    "classifier on its features, run the transient check on a few clips, and "
                    "judge the deployment gate (f0, Q, accuracy before fine-tuning).  Writes "
                    "RUN/spice/verify.json and plots; finished steps are reused on a re-run "
                    "(--force redoes them).")
    v.add_argument("run", help="run directory (written by learnafe train)")
    v.add_argument("--out", help="output directory [RUN/spice]")
    v.add_argument("--epochs", type=int, default=5,
                   help="fine-tuning epochs; 0: only the accuracy before fine-tuning [5]")
    v.add_argument("--no-finetune", action="store_true", help="skip accuracy and fine-tuning")
    v.add_argument("--no-transient", action="store_true", help="skip the transient check")
    v.add_argument("--clips", type=int, default=3, help="clips for the transient check [3]")
    v.add_argument("--clip-seconds", type=float, default=0.3,
                   help="simulated seconds per clip (loudest window) [0.3]")
    v.add_argument("--clip-data", help="data set for the transient clips [the run's data]")
    v.add_argument("--tran-step", type=float, default=2e-6,
                   help="transient max step (s); must divide the audio sample period [2e-6]")
    v.add_argument("--tran-amplitude", type=float, default=1e-3,
                   help="transient input, volts differential peak [1e-3]")
    v.add_argument("--seed", type=int, default=0, help="clip choice and fine-tuning seed [0]")
    v.add_argument("--no-noise", action="store_true",
                   help="skip the .noise analysis (the calibrated bank is then noiseless)")
    v.add_argument("--force", action="store_true", help="redo finished steps")
    add_gate_arguments(v)
    _sim_options(v)
    v.set_defaults(func=_verify)

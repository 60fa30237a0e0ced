"""``learnafe plot-bank``: magnitude responses and the circuit table of a filter bank."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from learnafe._jsonio import read_json, write_json

log = logging.getLogger("learnafe.plot_bank")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot-bank",
        help="plot a filter bank's responses (ideal analog vs discretised) and print its circuit table",
        description="Plot the magnitude responses of a bank spec (learnafe-bank/1 from AnalogFilterBank.to_dict() "
                    "or a run's bank.json; or learnafe-digital-bank/1) as PNG, print its channel table "
                    "(f0, Q, I1, I2, C1, C2, power, area) as markdown, and write a JSON summary. With "
                    "--conventional, design the hand-made baseline bank instead of reading a spec.")
    p.add_argument("spec", nargs="?", help="bank spec JSON (omit with --conventional)")
    p.add_argument("--conventional", action="store_true", help="design the conventional bank (log-spaced, constant Q)")
    p.add_argument("--n-channels", type=int, default=16, help="conventional bank: channels")
    p.add_argument("--f-lo", type=float, default=100.0, help="conventional bank: lowest centre (Hz)")
    p.add_argument("--f-hi", type=float, default=8000.0, help="conventional bank: highest centre (Hz)")
    p.add_argument("--q", type=float, default=None,
                   help="conventional bank: Q (default: neighbours cross at their -3 dB points)")
    p.add_argument("--sample-rate", type=float, default=20000.0, help="conventional bank: sample rate (Hz)")
    p.add_argument("--c-unit", type=float, default=1e-12, help="conventional bank: C1 = C2 (F)")
    p.add_argument("--gm-table", default=None,
                   help="conventional bank: gm model: a gm/Id table JSON (learnafe spice characterize), "
                        "sky130-tt/-ss/-ff or weak_inversion; default sky130-tt (the shipped SKY130 table)")
    p.add_argument("--discretization", default="bilinear", choices=("bilinear", "matched_z", "impulse_invariance", "magnitude_matched"),
                   help="conventional bank: s->z mapping")
    p.add_argument("--out", default=None, help="PNG path (default: SPEC with .png, or runs/plot-bank/conventional_bank.png)")
    p.add_argument("--spec-out", default=None, help="also write the (conventional) bank spec JSON here")
    p.add_argument("--summary", default=None, help="JSON summary path (default: next to the PNG, *_summary.json)")
    p.add_argument("--title", default=None, help="plot title")
    p.add_argument("--dpi", type=int, default=110, help="PNG resolution (dots per inch)")
    p.set_defaults(func=run)


def _load_bank(args):
    from learnafe.frontends import AnalogFilterBank, DigitalFilterBank
    from learnafe.frontends.digital import SPEC_FORMAT as DIGITAL_FORMAT
    from learnafe.frontends.spec import SPEC_FORMAT, BankSpec

    if args.conventional:
        if args.spec:
            raise ValueError("give either SPEC or --conventional, not both")
        log.info("designing the conventional bank: %d channels, %g-%g Hz, fs %g Hz, C %g F",
                 args.n_channels, args.f_lo, args.f_hi, args.sample_rate, args.c_unit)
        return AnalogFilterBank.conventional(n_channels=args.n_channels, f_lo=args.f_lo, f_hi=args.f_hi, q=args.q,
                                             sample_rate=args.sample_rate, c_unit=args.c_unit,
                                             gm_model=args.gm_table, discretization=args.discretization)
    if not args.spec:
        raise ValueError("SPEC is required (a bank JSON), or use --conventional")

    path = Path(args.spec)
    spec = read_json(path, "bank spec")
    fmt = spec.get("format") if isinstance(spec, dict) else None
    log.info("reading %s (%s)", path, fmt)
    if fmt == SPEC_FORMAT:
        return AnalogFilterBank.from_dict(BankSpec.from_dict(spec))
    if fmt == DIGITAL_FORMAT:
        return DigitalFilterBank.from_dict(spec)
    raise ValueError(f"{path}: format {fmt!r} is not {SPEC_FORMAT!r} or {DIGITAL_FORMAT!r}")


def run(args) -> int:

    from learnafe.frontends import AnalogFilterBank
    from learnafe.frontends.plots import plot_bank_response
    from learnafe.frontends.report import discretization_error, discretization_table, markdown_table

    bank = _load_bank(args)
    if args.out:
        out = Path(args.out)
    elif args.spec:
        out = Path(args.spec).with_suffix(".png")
    else:
        out = Path("runs/plot-bank/conventional_bank.png")
    title = args.title or (f"{'conventional ' if args.conventional else ''}{bank.n_channels}-channel bank")
    plot_bank_response(bank, out, title=title, dpi=args.dpi)
    summary = {"png": str(out), "n_channels": bank.n_channels, "sample_rate": bank.sample_rate}
    if isinstance(bank, AnalogFilterBank):
        spec = bank.to_dict()
        print(markdown_table(spec))
        err = discretization_error(bank)
        print(f"\ndiscretisation ({bank.discretization}) vs ideal analog, f <= {err['f_max_hz']:g} Hz:\n")
        print(discretization_table(err, [ch["f0_hz"] for ch in spec["channels"]]))
        summary.update(spec=spec, discretization_error=err)
        if args.spec_out:
            Path(args.spec_out).parent.mkdir(parents=True, exist_ok=True)
            bank.save(args.spec_out)
            log.info("wrote %s", args.spec_out)
    else:
        summary.update(spec=bank.to_dict(), peak_frequencies_hz=[float(v) for v in bank.peak_frequencies()])
        if args.spec_out:
            bank.save(args.spec_out)
        print("peak frequencies (Hz):", " ".join(f"{v:.1f}" for v in np.asarray(summary["peak_frequencies_hz"])))
    summary_path = Path(args.summary) if args.summary else out.with_name(out.stem + "_summary.json")
    write_json(summary_path, summary, indent=1, newline=False)
    log.info("wrote %s and %s", out, summary_path)
    return 0

"""``learnafe xylo ...`` and ``learnafe export-xylo``: the XyloAudio 3 digital filter bank."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from learnafe._jsonio import write_json
from learnafe.gate import add_arguments as add_gate_arguments
from learnafe.gate import markdown, thresholds_from_args

log = logging.getLogger("learnafe.xylo")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "xylo", help="XyloAudio 3 fixed-point filter bank: design, registers, filtering",
        description="Design XyloAudio 3 filter banks from centre frequencies and Q, export their "
                    "registers, filter audio bit-exactly and compute the chip's spike features.")
    sub = p.add_subparsers(dest="xylo_command", metavar="XYLO_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    _add_design(sub)
    _add_features(sub)
    _add_qat(sub)
    _add_export(subparsers)


def _add_design(sub) -> None:
    """``learnafe xylo design``: a bank from (centre, Q), its table and registers."""
    d = sub.add_parser(
        "design", help="design a bank from (centre, Q) and write its table and registers",
        description="Design the chip's integer configuration (B_b, B_af, B_wf, B_worst_case, a1, "
                    "a2, scale_out) per channel from centre frequencies and -3 dB Q at 50e6/1024 "
                    "Hz, print it with the realised centres/Q and the register values, and write "
                    "a design file (.json or .toml) and a response plot. --default uses the "
                    "centres and Q read off the chip's default table (reproduces it).")
    d.add_argument("--centres", type=float, nargs="+", help="centre frequencies in Hz")
    d.add_argument("--q", type=float, nargs="+", help="one Q for all channels or one per channel")
    d.add_argument("--default", action="store_true", help="the chip's default centres and Q")
    d.add_argument("--from-run", metavar="RUN", help="centres and Q of a run's bank.json")
    d.add_argument("--quantization", choices=("round", "best"), default="round",
                   help="tap quantisation: plain rounding (as the chip's default table) or the "
                        "integer pair closest to the target response")
    d.add_argument("--out", default="runs/xylo/design.json", help="design file (.json or .toml)")
    d.add_argument("--plot", default=None, help="response PNG (default: next to --out)")
    d.add_argument("--json", default=None, help="also write the result summary JSON here")
    d.set_defaults(func=_design)


def _add_features(sub) -> None:
    """``learnafe xylo features``: spike-count rasters of a WAV file."""
    f = sub.add_parser(
        "features", help="spike-count rasters of a WAV file (rockpool AFESim pipeline)",
        description="Resample a WAV file to the chip rate, quantise to 14 bits, filter with a "
                    "bank (default: the chip's) and compute divisive-normalisation spike counts "
                    "per raster frame; writes a JSON with the counts and a PNG raster.")
    f.add_argument("wav", help="audio file (WAV)")
    f.add_argument("--bank", default=None, help="design file (default: the chip's default bank)")
    f.add_argument("--mode", choices=("divisive_norm", "threshold"), default="divisive_norm",
                   help="spike generation: adaptive divisive normalisation or a fixed threshold")
    f.add_argument("--down-sampling-factor", type=int, default=50, help="samples per raster frame")
    f.add_argument("--out", default="runs/xylo/features", help="output folder")
    f.set_defaults(func=_features)


def _add_qat(sub) -> None:
    """``learnafe xylo qat``: quantisation-aware training of a run's classifier and chip bank."""
    q = sub.add_parser(
        "qat", help="train a run's classifier (and chip centres/Q) with the chip's quantisation",
        description="Quantisation-aware training: the classifier, and with --learn-bank the "
                    "XyloAudio 3 channels' centres and Q, are trained on the features of the "
                    "straight-through model of the quantised chip bank; the chip bank is then "
                    "designed from the trained centres/Q and the test accuracy with the "
                    "bit-exact bank is reported before and after. Resumes an interrupted run.")
    q.add_argument("run", help="run directory (learnafe train --out RUN)")
    q.add_argument("--out", default=None, help="output folder (default: RUN/xylo-qat)")
    q.add_argument("--epochs", type=int, default=2, help="quantisation-aware training epochs")
    q.add_argument("--learn-bank", action=argparse.BooleanOptionalAction, default=True,
                   help="also train the chip channels' centres and Q")
    q.add_argument("--lr", type=float, default=1e-3, help="classifier learning rate")
    q.add_argument("--lr-bank", type=float, default=3e-3, help="log centre / log Q learning rate")
    q.add_argument("--batch-size", type=int, default=None, help="clips per optimiser step (default: the run's)")
    q.add_argument("--limit-train", type=int, default=0, help="train on N clips (0 = all)")
    q.add_argument("--limit-eval", type=int, default=0, help="evaluate on N test clips (0 = all)")
    q.add_argument("--seed", type=int, default=0, help="seed of data order and augmentation")
    q.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bars on a terminal, progress log lines otherwise")
    q.set_defaults(func=_qat)


def _add_export(subparsers) -> None:
    """``learnafe export-xylo``: a run's bank on XyloAudio 3, registers and accuracy."""
    e = subparsers.add_parser(
        "export-xylo", help="deploy a co-designed run on XyloAudio 3: registers + accuracy",
        description="Design the XyloAudio 3 bank realising a run's learned centres and Q at the "
                    "chip rate, write the design files, registers and a response plot, and "
                    "report the run classifier's test accuracy with its own bank, the float chip "
                    "design and the bit-exact chip bank (optionally after fine-tuning the "
                    "classifier on the bit-exact features).")
    e.add_argument("run", help="run directory (learnafe train --out RUN)")
    e.add_argument("--out", default=None, help="output folder (default: RUN/xylo)")
    e.add_argument("--data", default=None, help="evaluate on this data set instead of the run's")
    e.add_argument("--limit", type=int, default=0,
                   help="evaluate on this many test clips (class-stratified, fixed); 0 = all")
    e.add_argument("--no-eval", action="store_true", help="only design and write the registers")
    e.add_argument("--finetune-epochs", type=int, default=0,
                   help="fine-tune the classifier on the bit-exact chip features for N epochs")
    e.add_argument("--quantization", choices=("round", "best"), default="best",
                   help="tap quantisation (see `learnafe xylo design --help`)")
    e.add_argument("--seed", type=int, default=0, help="fine-tuning seed")
    e.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bars on a terminal, progress log lines otherwise")
    add_gate_arguments(e, show_defaults=False)
    e.set_defaults(func=_export)


def _design(args) -> int:

    from learnafe.xylo import XyloA3FilterBank, design_bank
    from learnafe.xylo.deploy import plot_responses, read_bank_spec
    from learnafe.xylo.design import DEFAULT_CENTRES_HZ, DEFAULT_Q
    from learnafe.xylo.registers import register_config, save_design

    sources = sum([bool(args.default), bool(args.from_run), args.centres is not None])
    if sources != 1:
        raise ValueError("give exactly one of --centres/--q, --default or --from-run RUN")
    if args.default:
        centres, qs = list(DEFAULT_CENTRES_HZ), list(DEFAULT_Q)
    elif args.from_run:
        spec = read_bank_spec(args.from_run)
        centres, qs = spec.values("f0_hz"), spec.values("q")
    else:
        if not args.q:
            raise ValueError("--q is required with --centres (one value or one per centre)")
        centres = args.centres
        qs = args.q[0] if len(args.q) == 1 else args.q
    log.info("designing %d channels (quantization %s)", len(centres), args.quantization)
    bank = XyloA3FilterBank(design_bank(centres, qs, quantization=args.quantization))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_design(bank, out)
    real_c, real_q = bank.centres_and_q()
    qv = np.broadcast_to(np.asarray(qs, dtype=float), (len(centres),))
    print("| ch | centre (Hz) | Q | B_worst_case | B_b | B_af | B_wf | a1 | a2 | scale_out | "
          "chip centre (Hz) | chip Q |")
    print("| --- " * 12 + "|")
    for i, ch in enumerate(bank.channels):
        print(f"| {i} | {centres[i]:.2f} | {qv[i]:.4f} | {ch.B_worst_case} | {ch.B_b} | {ch.B_af} "
              f"| {ch.B_wf} | {ch.a1} | {ch.a2} | {ch.scale_out:.4f} | {real_c[i]:.2f} | "
              f"{real_q[i]:.3f} |")
    regs = register_config(bank)
    print()
    for k, v in regs.items():
        print(f"{k} = 0x{v:08x}")
    plot = Path(args.plot) if args.plot else out.with_suffix(".png")
    spec = {"channels": [{"f0_hz": c, "q": q} for c, q in zip(centres, qv)]}
    plot_responses(spec, bank, plot, target="(centre, Q) target")
    summary = {"design_file": str(out), "plot": str(plot), "registers": regs,
               "equals_chip_default": bank == XyloA3FilterBank.default(),
               "channels": [dict(ch.to_dict(), target_centre_hz=float(c), target_q=float(q),
                                 chip_centre_hz=float(rc), chip_q=float(rq))
                            for ch, c, q, rc, rq in zip(bank.channels, centres, qv, real_c, real_q)]}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, summary)
    log.info("wrote %s and %s%s", out, plot,
             " (identical to the chip's default table)" if summary["equals_chip_default"] else "")
    return 0


def _features(args) -> int:
    from scipy.io import wavfile

    from learnafe.xylo import XyloA3FilterBank, load_design
    from learnafe.xylo.features import SpikeConfig, XyloA3SpikeFeatures

    wav = Path(args.wav)
    if not wav.is_file():
        raise FileNotFoundError(f"no audio file at {wav}")
    sr, audio = wavfile.read(wav)
    audio = np.asarray(audio)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio / float(np.iinfo(audio.dtype).max)
    bank = load_design(args.bank) if args.bank else XyloA3FilterBank.default()
    cfg = SpikeConfig(mode=args.mode, down_sampling_factor=args.down_sampling_factor)
    counts = XyloA3SpikeFeatures(bank, cfg)(audio.astype(np.float64), float(sr))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{wav.stem}_spikes.json",
               {"wav": str(wav), "config": cfg.to_dict(), "frame_seconds": cfg.frame_seconds,
                "counts": counts.tolist()}, indent=None)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    im = ax.imshow(counts, aspect="auto", origin="lower", interpolation="nearest",
                   extent=(0, counts.shape[1] * cfg.frame_seconds, -0.5, counts.shape[0] - 0.5))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("channel")
    fig.colorbar(im, ax=ax, label="spikes / frame")
    fig.tight_layout()
    fig.savefig(out / f"{wav.stem}_spikes.png", dpi=110)
    plt.close(fig)
    log.info("%s: %d channels x %d frames, %d spikes -> %s", wav, counts.shape[0], counts.shape[1],
             int(counts.sum()), out)
    return 0


def _qat(args) -> int:
    from learnafe.xylo.qat import RESULT, QatOptions, quantization_aware_training

    res = quantization_aware_training(
        args.run, QatOptions(epochs=args.epochs, learn_bank=args.learn_bank, lr=args.lr, lr_bank=args.lr_bank,
                             seed=args.seed, batch_size=args.batch_size, limit_train=args.limit_train,
                             limit_eval=args.limit_eval), out_dir=args.out, progress=args.progress)
    for k in ("before_bitexact", "after_bitexact"):
        print(f"{k:16s} mean accuracy {res[k]['mean_accuracy']:.4f}  " +
              "  ".join(f"{c}:{v:.3f}" for c, v in res[k]["accuracy"].items()))
    print(f"wrote {Path(res['out_dir']) / RESULT}")
    return 0


def _export(args) -> int:
    from learnafe.xylo.deploy import export_xylo

    res = export_xylo(args.run, args.out, data=args.data, evaluate=not args.no_eval,
                      finetune_epochs=args.finetune_epochs, limit=args.limit, seed=args.seed,
                      quantization=args.quantization, progress=args.progress,
                      gate=thresholds_from_args(args))
    acc = res.get("accuracy")
    if acc:
        for k in ("run", "xylo_float", "xylo_bitexact"):
            print(f"{k:14s} mean accuracy {acc[k]['mean_accuracy']:.4f}  " +
                  "  ".join(f"{c}:{v:.3f}" for c, v in acc[k]["accuracy"].items()))
    print(markdown(res["gate"], "XyloAudio 3 bit-exact bank").rstrip())
    print(f"wrote {Path(res['out_dir']) / 'xylo_export.json'}")
    return 3 if (args.strict_gate and not res["gate"]["passed"]) else 0

"""From a co-designed analog bank to a deployable XyloAudio 3 configuration.

A run's ``bank.json`` (``learnafe-bank/1``) lists each channel's centre
``f0_hz``, quality factor ``q`` and peak ``gain`` of the analog DSSF filter
(trained at the run's audio rate, 20 kHz by default).  The chip realises the
same band-pass at its own rate: :func:`xylo_bank_from_spec` designs each
channel with the same centre and -3 dB Q at ``50e6/1024`` Hz
(:func:`learnafe.xylo.design.design_channel`) and reports how far the
quantised chip filter lands from the target.

:func:`export_xylo` (``learnafe export-xylo RUN``) writes the design file and
registers and measures the run's classifier on the test split with three
front ends: the run's own (float, 20 kHz), the float XyloAudio 3 design, and
the bit-exact chip bank; optionally it fine-tunes the classifier on the
bit-exact features (the chip's quantisation in the loop).

The deployment gate (:mod:`learnafe.gate`) judges the bit-exact chip bank
before any fine-tuning: each channel's realised f0 and Q against the bank's
spec, and its mean and clean accuracy against the run's own front end
(``result["gate"] = {"passed": ..., "failures": [...]}``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from learnafe import gate as gate_mod
from learnafe._jsonio import write_json
from learnafe.frontends.spec import BankSpec
from learnafe.training import load_run
from learnafe.training.evaluate import compare_frontends, heldout_sets
from learnafe.training.finetune import finetune
from learnafe.xylo.bank import XyloA3FilterBank
from learnafe.xylo.design import XYLO_SAMPLE_RATE, design_bank, grid_limit, peak_and_q
from learnafe.xylo.quantized import XyloA3Frontend
from learnafe.xylo.registers import register_config, save_design

log = logging.getLogger(__name__)

EXPORT_JSON = "xylo_export.json"


#: The channel values a deployment needs from a bank spec.
NEEDED = ("f0_hz", "q")


def bank_spec(spec) -> BankSpec:
    """``spec`` (a :class:`~learnafe.frontends.spec.BankSpec` or its dict) checked for deployment:
    every channel has a centre ``f0_hz`` and a ``q``.  A dict may leave out ``"format"`` (a list
    of design targets); a file read by :func:`read_bank_spec` must carry it."""
    return BankSpec.from_dict(spec, required=NEEDED, require_format=False)


def read_bank_spec(run_dir) -> BankSpec:
    """The run's ``bank.json`` (or a bank spec file given directly).  A run still in
    training has no ``bank.json`` yet: its best checkpoint's bank is used."""
    path = Path(run_dir)
    if path.is_dir() and not (path / "bank.json").is_file() and (path / "config.json").is_file():
        log.info("%s has no bank.json yet; using the bank of its best checkpoint", path)
        return bank_spec(load_run(path).bank)
    path = path / "bank.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no bank spec at {path}; give a run directory written by "
                                "`learnafe train` (RUN/bank.json) or a learnafe-bank/1 JSON file")
    return BankSpec.load(path, required=NEEDED)


def xylo_bank_from_spec(spec, chip_rate: float = XYLO_SAMPLE_RATE, *,
                        quantization: str = "best"):
    """(bank, per-channel report) realising the spec's centres and Q on the chip
    (``quantization``: see :func:`learnafe.xylo.design.design_channel`; ``spec``: a
    :class:`~learnafe.frontends.spec.BankSpec` or its dict)."""
    spec = bank_spec(spec)
    centres = np.array(spec.values("f0_hz"), dtype=np.float64)
    qs = np.array(spec.values("q"), dtype=np.float64)
    if len(centres) > 16:
        raise ValueError(f"the bank has {len(centres)} channels; XyloAudio 3 has 16")
    bank = XyloA3FilterBank(design_bank(centres, qs, chip_rate, quantization=quantization),
                            chip_rate)
    rows = []
    for i, (ch, f, q) in enumerate(zip(bank.channels, centres, qs)):
        rf, rq = peak_and_q(ch, chip_rate)
        rows.append({"channel": i, "target_f0_hz": float(f), "target_q": float(q),
                     "realised_f0_hz": rf, "realised_q": rq,
                     "f0_error": rf / f - 1.0, "q_error": rq / q - 1.0,
                     "gain": float(_gain(spec.channels[i]))})
    return bank, rows


def _gain(ch) -> float:
    return 1.0 if ch.gain is None else ch.gain


def frontend_for_run(run_dir, mode: str = "bitexact", *, bank: XyloA3FilterBank | None = None,
                     spec=None, learn_bank: bool = False,
                     quantization: str = "best"):
    """A :class:`~learnafe.xylo.quantized.XyloA3Frontend` producing the run's features
    (``bank``: the chip bank designed with ``quantization``; designed here if None)."""
    spec = read_bank_spec(run_dir) if spec is None else bank_spec(spec)
    if bank is None:
        bank, _ = xylo_bank_from_spec(spec, quantization=quantization)
    centres = [float(v) for v in spec.values("f0_hz")]
    qs = [float(v) for v in spec.values("q")]
    gains = [float(_gain(c)) for c in spec.channels]
    return XyloA3Frontend(bank, sample_rate=float(20000.0 if spec.sample_rate is None else spec.sample_rate),
                          features=spec.features, centres_hz=centres, q=qs, gains=gains,
                          mode=mode, learn_bank=learn_bank, quantization=quantization)


def plot_responses(spec, bank: XyloA3FilterBank, path,
                   target: str = "co-designed target") -> Path:
    """Target responses (dashed: the analog band-pass with each channel's centre and
    Q) and the quantised chip channels (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = np.geomspace(30, 0.49 * bank.sample_rate, 3000)
    H = np.abs(bank.frequency_response(f))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    s = 2j * np.pi * f
    for i, ch in enumerate(bank_spec(spec).channels):
        w0 = 2 * np.pi * float(ch.f0_hz)
        bw = w0 / float(ch.q)
        ha = np.abs(bw * s / (s * s + bw * s + w0 * w0))  # unit-peak analog band-pass
        ax.semilogx(f, 20 * np.log10(ha + 1e-12), "--", color=f"C{i % 10}", lw=0.8)
        ax.semilogx(f, 20 * np.log10(H[i] + 1e-12), "-", color=f"C{i % 10}", lw=1.2)
    ax.set_ylim(-40, 3)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("gain (dB, unit peak)")
    ax.set_title(f"XyloAudio 3 bank (solid, quantised, {bank.sample_rate / 1000:.1f} kHz) vs "
                 f"{target} (dashed)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _explain_grid_limits(verdict: dict, rows: list, chip_rate: float) -> None:
    """Say which failing channels no chip configuration could meet (in place on the gate's
    verdict: ``grid_limited_channels`` and a note per channel)."""
    th = verdict["thresholds"]
    failing = sorted(set(verdict.get("f0_failing_channels", [])) | set(verdict.get("q_failing_channels", [])))
    limited = []
    for i in failing:
        g = grid_limit(rows[i]["target_f0_hz"], rows[i]["target_q"], chip_rate,
                       f0_pct=th["f0_pct"], q_pct=th["q_pct"])
        if not g["within"]:
            limited.append(i)
            note = (f"channel {i} ({rows[i]['target_f0_hz']:.1f} Hz, Q {rows[i]['target_q']:.2f}): no tap pair "
                    f"of the chip's 16-bit grid at {chip_rate / 1000:.1f} kHz is within both limits (closest: "
                    f"f0 {g['f0_error_pct']:+.2f} %, Q {g['q_error_pct']:+.2f} %), a limit of the chip, not "
                    "of the rounding")
            verdict.setdefault("notes", []).append(note)
            log.warning("%s", note)
    verdict["grid_limited_channels"] = limited


def export_xylo(run_dir, out_dir=None, *, data=None, evaluate: bool = True,
                finetune_epochs: int = 0, limit: int = 0, seed: int = 0,
                quantization: str = "best", progress: bool = True, gate=None) -> dict:
    """Design, write and measure the XyloAudio 3 deployment of a run (see module doc).

    ``gate``: :class:`learnafe.gate.GateThresholds` of the deployment gate (default
    2 % f0, 5 % Q, 1 point of mean and clean accuracy).

    ``limit``: evaluate on ``limit`` test clips drawn with the class proportions
    (deterministic; 0 = all).
    Returns the result dict also written to ``OUT/xylo_export.json``.
    """
    run_dir = Path(run_dir)
    spec = read_bank_spec(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "xylo"
    out.mkdir(parents=True, exist_ok=True)
    bank, rows = xylo_bank_from_spec(spec, quantization=quantization)
    meta = {"run": str(run_dir), "source_sample_rate": spec.sample_rate,
            "quantization": quantization}
    save_design(bank, out / "xylo_bank.json", **meta)
    save_design(bank, out / "xylo_bank.toml", **meta)
    regs = register_config(bank)
    write_json(out / "registers.json", regs)
    plot_responses(spec, bank, out / "xylo_responses.png")
    log.info("designed %d XyloAudio 3 channels; max |f0 error| %.2f %%, max |Q error| %.2f %%",
             len(bank), 100 * max(abs(r["f0_error"]) for r in rows),
             100 * max(abs(r["q_error"]) for r in rows))
    result = {"format": "learnafe-xylo-export/1", "run": str(run_dir), "out_dir": str(out),
              "quantization": quantization,
              "chip_sample_rate": bank.sample_rate, "channels": rows, "registers": regs,
              "files": ["xylo_bank.json", "xylo_bank.toml", "registers.json",
                        "xylo_responses.png"]}
    if evaluate:
        result["accuracy"] = _evaluate(run_dir, spec, bank, data=data, limit=limit,
                                       quantization=quantization, progress=progress)

    acc = result.get("accuracy") or {}
    result["gate"] = gate_mod.check_held_out(
        f0_error_pct=[100 * r["f0_error"] for r in rows],
        q_error_pct=[100 * r["q_error"] for r in rows],
        held_out=acc.get("held_out"), reference="run", deployed="xylo_bitexact",
        thresholds=gate, what="XyloAudio 3 bit-exact bank")
    _explain_grid_limits(result["gate"], rows, bank.sample_rate)
    if finetune_epochs:
        fe = frontend_for_run(run_dir, "bitexact", bank=bank, spec=spec,
                              quantization=quantization)
        ft = finetune(run_dir, fe, epochs=finetune_epochs, out_dir=out / "finetune-bitexact",
                      seed=seed, progress=progress, label="finetune-xylo")
        result["finetune_bitexact"] = {"epochs": finetune_epochs,
                                       "before": ft["before"]["accuracy"],
                                       "after": ft["after"]["accuracy"],
                                       "out_dir": str(out / "finetune-bitexact")}
    write_json(out / EXPORT_JSON, result)
    return result


def _evaluate(run_dir, spec, bank, *, data=None, limit: int = 0, quantization: str = "best",
              progress: bool = True) -> dict:
    """The run's classifier on its own bank and on the chip bank (float design and bit-exact),
    over the held-out sets (:func:`learnafe.training.evaluate.heldout_sets`: the test split
    and, for a run trained with real speakers, its real validation speakers); the top-level
    accuracies are the pooled ones, per set under ``held_out``."""
    run = load_run(run_dir)
    cfg = run.config
    sets = heldout_sets(cfg, data=data, limit=limit, progress=progress)
    fronts = {"run": run.frontend,
              "xylo_float": frontend_for_run(run_dir, "float", bank=bank, spec=spec,
                                             quantization=quantization),
              "xylo_bitexact": frontend_for_run(run_dir, "bitexact", bank=bank, spec=spec,
                                                quantization=quantization)}
    t0 = time.perf_counter()
    held = compare_frontends(run.classifier, fronts, sets, snrs=cfg.evaluation.eval_snrs, progress=progress)
    out = {"data": str(Path(data) if data else Path(cfg.data.root)), "n": held["pooled"]["n"],
           "sets": {k: v["n"] for k, v in held["sets"].items()}, "snrs": list(cfg.evaluation.eval_snrs),
           "seconds": time.perf_counter() - t0, "held_out": held}
    out.update({k: held["pooled"][k] for k in fronts})
    return out

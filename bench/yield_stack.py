"""Time of a yield analysis with stacked chips against one chip at a time, in one process.

``python bench/yield_stack.py [--chips 20] [--clips-per-word 6] [--chips-per-call 1 4 10 20] [--noise]``
writes a small synthetic keyword set (tones in the 12-class layout, 1 s at 20 kHz, into a
temporary folder), takes the conventional 16-channel analog bank and an (untrained) DS-CNN,
and times on its validation split, clean and at 10 dB, with one thread (``--noise``: with the
bank's kT/C circuit noise on, ``noise.mode = "always"``):

* one chip at a time: every chip built on its own (``sample_chip``) and evaluated with
  ``evaluate_dataset``, the evaluation ``yield_analysis`` made before chip stacks;
* ``yield_analysis`` with ``chips_per_call`` K for each K given.

After a warm-up, it prints a markdown table (seconds, ratio to one chip at a time) and checks
that every variant gives the same accuracies.  Then the front end alone on one batch of the
validation clips: the stack of all chips as one ``ChipStack`` call against one
``filterbank_envelope`` call per chip with the same seed (checked bit for bit equal), median of 5.
Speed only: the classifier is not trained.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from learnafe.data import KEYWORDS, KeywordDataset, write_wav
from learnafe.frontends import AnalogFilterBank
from learnafe.training.chips import YieldOptions, sample_chip, yield_analysis
from learnafe.training.evaluate import evaluate_dataset
from learnafe.training.model import DSCNN, CoDesignModel

RATE = 20000


def _toy_set(root: Path, per_word: int) -> Path:
    """Tone bursts per keyword (and two unknown words); the last ``per_word // 2`` clips of each
    word are the validation split."""
    rng = np.random.default_rng(0)
    words = tuple(KEYWORDS) + ("bed", "cat")
    n = RATE
    t = np.arange(n) / RATE
    val = []
    for w, f in zip(words, np.geomspace(200, 5000, len(words))):
        (root / w).mkdir(parents=True, exist_ok=True)
        for k in range(per_word):
            env = np.zeros(n)
            on = int(rng.uniform(0.1, 0.3) * n)
            env[on:on + n // 2] = np.hanning(n // 2)
            clip = 0.3 * env * np.sin(2 * np.pi * f * (1 + 0.03 * rng.standard_normal()) * t)
            name = f"{hashlib.sha1(f'{w}{k}'.encode()).hexdigest()[:8]}_nohash_{k}.wav"
            write_wav(root / w / name, clip.astype(np.float32), RATE)
            if k >= per_word - per_word // 2:
                val.append(f"{w}/{name}")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("")
    (root / "_background_noise_").mkdir(exist_ok=True)
    write_wav(root / "_background_noise_" / "noise.wav",
              (0.1 * rng.standard_normal(RATE * 6)).astype(np.float32), RATE)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chips", type=int, default=20, help="sampled chips (default 20)")
    ap.add_argument("--clips-per-word", type=int, default=6, help="clips per word; half are validation (default 6)")
    ap.add_argument("--chips-per-call", type=int, nargs="+", default=[1, 4, 10, 20],
                    help="stack sizes to time (default 1 4 10 20)")
    ap.add_argument("--noise", action="store_true", help="circuit noise on (noise.mode = 'always')")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = _toy_set(Path(tmp) / "toy", args.clips_per_word)
        ds = KeywordDataset(root, "validation", sample_rate=RATE, cache_dir=str(Path(tmp) / "cache"), progress=False)
        bank = AnalogFilterBank.conventional(16, noise={"mode": "always"} if args.noise else None).eval()
        torch.manual_seed(0)
        model = CoDesignModel(bank, DSCNN(16, 12)).eval()
        opts = YieldOptions(seed=0, snrs=(10.0,), corners=())
        # warm-up (operator registration, first-call allocations, the audio cache), not timed
        evaluate_dataset(CoDesignModel(sample_chip(bank, seed=0), model.classifier), ds, snrs=(10.0,))
        yield_analysis(model, ds, 2, YieldOptions(**{**opts.__dict__, "chips_per_call": 2}), progress=False)
        t0 = time.perf_counter()
        ref = [evaluate_dataset(CoDesignModel(sample_chip(bank, seed=k), model.classifier), ds, snrs=(10.0,),
                                batch_size=opts.batch_size)["accuracy"] for k in range(args.chips)]
        base = time.perf_counter() - t0
        rows = [("one chip at a time (sample_chip + evaluate_dataset)", base)]
        for k in args.chips_per_call:
            t0 = time.perf_counter()
            res = yield_analysis(model, ds, args.chips, YieldOptions(**{**opts.__dict__, "chips_per_call": k}),
                                 progress=False)
            rows.append((f"yield_analysis, chips_per_call={k}", time.perf_counter() - t0))
            got = [{key: c["accuracy"][key] for key in ref[0]} for c in res["chips"]]
            if got != ref:
                raise SystemExit(f"chips_per_call={k} gives other accuracies than one chip at a time")
        front = _front_end_times(bank, ds, args.chips)
    noise = "circuit noise on" if args.noise else "no circuit noise"
    print(f"{args.chips} chips, {len(ds)} clips x 2 conditions (clean, 10 dB), {noise}, 1 thread\n")
    print("| path | s | speed-up |\n| --- | ---: | ---: |")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {base / s:.2f}x |")
    print(f"\nfront end alone, {args.chips} chips x {front['clips']} clips, median of 5\n")
    print("| path | ms | speed-up |\n| --- | ---: | ---: |")
    for name in ("one call per chip", "one stacked call"):
        print(f"| {name} | {front[name] * 1e3:.1f} | {front['one call per chip'] / front[name]:.2f}x |")


def _front_end_times(bank, ds, n_chips: int) -> dict:
    """Seconds (median of 5) of the chips' features on the validation clips: one stacked call, and
    one envelope call per chip with the same seed (the two checked bit for bit equal)."""
    from learnafe.frontends import features as feat
    from learnafe.ops.operators import torch_seed

    with torch.no_grad():
        stack = bank.chip_stack([bank.draw_factors(k) for k in range(n_chips)])
        x = torch.from_numpy(np.stack([ds.waveform(i) for i in range(len(ds))]))

        def per_chip():
            torch.manual_seed(0)
            seed = torch_seed() if stack.noise_std is not None else None
            env = torch.stack([feat.envelopes(x, stack.b[j], stack.a[j], stack.sample_rate, stack.features,
                                              noise_std=None if seed is None else stack.noise_std[j], seed=seed)
                               for j in range(n_chips)])
            return feat.post_process(env, stack.features)

        def stacked():
            torch.manual_seed(0)
            return stack(x)

        if not torch.equal(stacked(), per_chip()):
            raise SystemExit("the stacked front-end call differs from one call per chip")
        out = {"clips": len(x)}
        for name, fn in (("one call per chip", per_chip), ("one stacked call", stacked)):
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            out[name] = float(np.median(times))
    return out


if __name__ == "__main__":
    main()

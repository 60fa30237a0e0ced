"""Time of a yield analysis with stacked chips against one chip at a time, in one process.

``python bench/yield_stack.py [--chips 20] [--clips-per-word 6] [--chips-per-call 1 4 10 20]``
writes a small synthetic keyword set (tones in the 12-class layout, 1 s at 20 kHz, into a
temporary folder), takes the conventional 16-channel analog bank and an (untrained) DS-CNN,
and times on its validation split, clean and at 10 dB, with one thread:

* one chip at a time: every chip built on its own (``sample_chip``) and evaluated with
  ``evaluate_dataset``, the evaluation ``yield_analysis`` made before chip stacks;
* ``yield_analysis`` with ``chips_per_call`` K for each K given.

After a warm-up, it prints a markdown table (seconds, ratio to one chip at a time) and checks
that every variant gives the same accuracies.  Speed only: the classifier is not trained.
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
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = _toy_set(Path(tmp) / "toy", args.clips_per_word)
        ds = KeywordDataset(root, "validation", RATE, cache_dir=str(Path(tmp) / "cache"))
        bank = AnalogFilterBank.conventional(16).eval()
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
    print(f"{args.chips} chips, {len(ds)} clips x 2 conditions (clean, 10 dB), 1 thread\n")
    print("| path | s | speed-up |\n| --- | ---: | ---: |")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {base / s:.2f}x |")


if __name__ == "__main__":
    main()

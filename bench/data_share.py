"""The data pipeline's share of a training step, with the voice/room augmentation on.

``python bench/data_share.py`` builds the training set of the ablation's base configuration
(``bench/ablate.py``: the demo's synthetic set, real training speakers, extra ``unknown`` words,
real noise) with ``augment.voice_augment`` ``--voice`` (default: the defaults on), and runs
``--batches`` co-design training steps (batch 32, one thread, :mod:`learnafe.benchmarks._step`)
fed by a ``torch.utils.data.DataLoader`` with 0, 1 and 2 workers.  Each batch is what the trainer
loads (:func:`learnafe.training.data.stack_batch`: clip, augmentation, noise, shift, gain,
masks).  Printed per worker count: the median time the step loop waits for its next batch,
the median step, and the data share ``wait / (wait + step)``; with 0 workers the wait is the
whole load.  All rows run in one process, one after the other (a change of machine load hits
them alike only roughly: read the shares as ratios of one run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from ablate import base_config
from learnafe.benchmarks._step import make_setup, train_step
from learnafe.training.config import TrainConfig
from learnafe.training.data import Augmenter, stack_batch, training_set


class _Batches(torch.utils.data.Dataset):
    """Batch ``k`` of a fixed list of index batches, loaded as the trainer loads it."""

    def __init__(self, ds, batches, augmenter, epoch: int):
        self.ds, self.batches, self.aug, self.epoch = ds, batches, augmenter, epoch

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, k):
        return stack_batch(self.ds, self.batches[k], augmenter=self.aug, epoch=self.epoch)


def measure(cfg: TrainConfig, workers: int, n_batches: int, batch: int = 32) -> dict:
    ds = training_set(cfg)
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(0)
    aug = Augmenter(cfg, cfg.bank.n_channels, 100)
    perm = np.random.default_rng(0).permutation(len(ds))
    batches = [perm[i * batch:(i + 1) * batch] for i in range(n_batches + 2)]
    loader = torch.utils.data.DataLoader(_Batches(ds, batches, aug, 0), batch_size=None, shuffle=False,
                                         num_workers=workers, prefetch_factor=2 if workers else None)
    s = make_setup("codesign", True, batch, 0)
    waits, steps = [], []
    it = iter(loader)
    for k in range(n_batches + 2):
        t0 = time.perf_counter()
        audio, labels, mask = next(it)
        t1 = time.perf_counter()
        s["audio"], s["labels"] = audio, labels
        if mask is not None:
            s["mask"] = mask
        train_step(s)
        t2 = time.perf_counter()
        if k >= 2:  # the first batches include the workers' start
            waits.append(t1 - t0)
            steps.append(t2 - t1)
    wait, step = statistics.median(waits), statistics.median(steps)
    return {"workers": workers, "wait_ms": 1e3 * wait, "step_ms": 1e3 * step,
            "data_share": wait / (wait + step)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/synth-small")
    ap.add_argument("--voice", default='{"enabled": true}', help="augment.voice_augment (JSON)")
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--workers", default="0,1,2")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict({**base_config(args.data, 1, 2000, 0),
                                 "augment.voice_augment": json.loads(args.voice)})
    print("| DataLoader workers | wait for the batch | step | data share |\n| ---: | ---: | ---: | ---: |")
    for w in (int(x) for x in args.workers.split(",")):
        r = measure(cfg, w, args.batches)
        print(f"| {w} | {r['wait_ms']:.0f} ms | {r['step_ms']:.0f} ms | {100 * r['data_share']:.0f} % |",
              flush=True)


if __name__ == "__main__":
    main()

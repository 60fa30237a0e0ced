"""pytest-benchmark timings of the voice/room augmentation against a co-design
training step (``pytest bench/bench_augment.py``): one batch of the demo's size
(32 clips of 1 s at 20 kHz, a synthetic harmonic voice) through
:class:`learnafe.data.augment.VoiceAugment` with the default options, every
effect forced on, and one forward/backward/AdamW step of the demo's co-design
model on the same batch (one thread).  The ratio of the two medians is what
the augmentation adds to a step in a single process.
"""

import numpy as np
import pytest
import torch

from learnafe.data.augment import VoiceAugment

SR = 20000
BATCH = 32
ALL_ON = {"enabled": True, "formant_prob": 1, "pitch_prob": 1, "tempo_prob": 1, "eq_prob": 1,
          "reverb_prob": 1, "level_prob": 1, "clip_prob": 1}


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    out = []
    for _ in range(BATCH):
        f0 = rng.uniform(90, 250)
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 30) if f0 * k < 0.45 * SR)
        out.append((0.2 * x * (np.abs(t - 0.5) < 0.3) + 0.001 * rng.standard_normal(SR)).astype(np.float32))
    return out


@pytest.mark.parametrize("options", [{"enabled": True}, ALL_ON], ids=["defaults", "all-on"])
def test_augment_batch(benchmark, clips, options):
    aug = VoiceAugment(options, SR)
    benchmark(lambda: [aug(x, np.random.default_rng([0, k])) for k, x in enumerate(clips)])


def test_codesign_training_step(benchmark, clips):
    from learnafe.demo import DEMO_CONFIG
    from learnafe.training import TrainConfig
    from learnafe.training.model import CoDesignModel, build_classifier, build_frontend

    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict({**DEMO_CONFIG, "progress": False})
    model = CoDesignModel(build_frontend(cfg), build_classifier(cfg, cfg.bank.n_channels))
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    audio = torch.from_numpy(np.stack(clips))
    labels = torch.arange(BATCH) % 12

    def step():
        out = model(audio)
        loss = torch.nn.functional.cross_entropy(out["logits"], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    benchmark(step)

"""The demo's recipe on a folder in the layout of the full Speech Commands v0.02 download
(`learnafe train --config configs/train_full_gsc.json --data PATH`)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from env_helpers import package_env
from learnafe.data import KEYWORDS, KeywordDataset, write_wav
from learnafe.demo import DEMO_CONFIG, REAL_RECIPE
from learnafe.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "train_full_gsc.json"
RATE = 16000
WORDS = tuple(KEYWORDS) + ("bed", "cat", "marvin")


def _speech_commands_folder(root: Path, n_speakers: int = 10) -> tuple[set, set]:
    """Class folders of 1 s 16 kHz clips named ``<hash>_nohash_<n>.wav`` (every speaker says
    every word, some twice), ``_background_noise_``, and the two list files splitting by speaker
    (speakers 0-5 train, 6-7 validation, 8-9 test); returns the validation and test names."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    val, test = set(), set()
    for s in range(n_speakers):
        spk = hashlib.sha1(f"speaker{s}".encode()).hexdigest()[:8]
        for w_i, w in enumerate(WORDS):
            (root / w).mkdir(parents=True, exist_ok=True)
            for n in range(1 + (s % 2)):
                f = 200.0 * 1.25 ** w_i * (1 + 0.02 * rng.standard_normal())
                x = 0.3 * np.sin(2 * np.pi * f * t) * np.hanning(RATE)
                name = f"{w}/{spk}_nohash_{n}.wav"
                write_wav(root / name, x.astype(np.float32), RATE)
                (val if s in (6, 7) else test if s in (8, 9) else set()).add(name)
    (root / "validation_list.txt").write_text("".join(f"{n}\n" for n in sorted(val)))
    (root / "testing_list.txt").write_text("".join(f"{n}\n" for n in sorted(test)))
    (root / "_background_noise_").mkdir()
    for j in range(2):
        write_wav(root / "_background_noise_" / f"noise{j}.wav",
                  (0.05 * rng.standard_normal(RATE * 8)).astype(np.float32), RATE)
    (root / "README.md").write_text("Speech Commands layout\n")
    return val, test


def test_full_scale_config_is_the_demos_recipe():
    cfg = TrainConfig.from_dict(json.loads(CONFIG.read_text()))
    assert cfg == TrainConfig.from_dict({**DEMO_CONFIG, "augment.time_masks": REAL_RECIPE["augment.time_masks"],
                                         "augment.freq_masks": REAL_RECIPE["augment.freq_masks"]})
    assert cfg.augment.time_masks == cfg.augment.freq_masks == 0


def test_train_reads_the_speech_commands_split_lists(tmp_path):
    data = tmp_path / "speech_commands_v0.02"
    val, test = _speech_commands_folder(data)
    names = {sp: {KeywordDataset(data, sp, unknown_fraction=None).name(i)
                  for i in range(len(KeywordDataset(data, sp, unknown_fraction=None)))}
             for sp in ("train", "validation", "test")}
    speech = lambda s: {n for n in s if not n.startswith("_")}  # noqa: E731 - silence clips are cut from noise
    assert speech(names["validation"]) == val
    assert speech(names["test"]) == test
    assert not speech(names["train"]) & (val | test)
    assert len(speech(names["train"])) == 6 * len(WORDS) * 3 // 2


@pytest.mark.slow
def test_train_with_the_full_scale_config_on_that_layout(tmp_path):
    data = tmp_path / "speech_commands_v0.02"
    _speech_commands_folder(data)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "learnafe", "train", "--config", str(CONFIG), "--data", str(data),
                        "--out", str(out), "--mode", "codesign", "--epochs", "1", "--eval-snrs", "10"],
                       env=package_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    saved = json.loads((out / "config.json").read_text())
    assert (saved["data"]["root"], saved["augment"]["time_masks"], saved["schedule"]["epochs"]) == (str(data), 0, 1)
    assert metrics["status"] == "finished" and metrics["epochs_run"] == 1
    assert metrics["training_data"].startswith(f"{data} (training split")
    assert 0 < metrics["n_val"] < metrics["n_train"] and metrics["throughput_clips_per_s"] > 0
    assert metrics["test"]["split"] == "test" and metrics["test"]["n"] == len(KeywordDataset(data, "test"))

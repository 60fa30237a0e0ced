"""The demo pipeline end to end on the toy data set (parallel training, real-folder
evaluation and speaker-half fine-tuning, report, summary)."""

from __future__ import annotations

import json

import pytest

from test_training import _make_12class_folder
from training_helpers import make_toy_dataset, tiny_config


@pytest.mark.slow
def test_demo_end_to_end_on_toy_data(tmp_path, monkeypatch):
    import learnafe.training.data as tdata
    from learnafe.demo import DemoOptions, run_demo

    monkeypatch.setenv("LEARNAFE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LEARNAFE_SHARED_DATA", str(tmp_path / "no-shared"))  # only the toy folders
    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    data = make_toy_dataset(tmp_path / "data", per_word=16)
    real = tmp_path / "real"
    counts = _make_12class_folder(real, data)
    over = {k: v for k, v in tiny_config(data).items() if k != "data"}
    over.update(epochs=2, frontend={}, noise_mode="off")
    s = run_demo(DemoOptions(out=tmp_path / "demo", data=data, real=real, progress=False, overrides=over))
    out = tmp_path / "demo"
    assert (out / "report.md").is_file() and (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text()) == s
    for mode in ("conventional", "codesign"):
        m = json.loads((out / mode / "metrics.json").read_text())
        assert m["status"] == "finished" and m["mode"] == mode
        ev = json.loads((out / mode / "eval" / "real.json").read_text())
        assert ev["class_counts"] == counts
        ft = json.loads((out / mode / "finetune-real" / "finetune.json").read_text())
        assert ft["n_train"] + ft["n_eval"] == sum(counts.values())
        assert "speaker half A" in ft["protocol"]
    assert s["codesign"]["power_w"] < s["conventional"]["power_w"]   # lambda_i > 0 at work
    md = (out / "report.md").read_text()
    assert "finetune-real (after)" in md and "real" in md
    # with a labelled real folder the models train on its training speakers too, and the
    # report opens with the held-out real speakers and names the training data
    assert s["data_mode"] == "synthetic + real" and str(real) in s["trained_on"]
    assert md.index("## Real speakers") < md.index("## Power, area and accuracy")
    assert "Trained on:" in md and "training speakers" in md
    for mode in ("conventional", "codesign"):
        assert set(s[mode]["real_validation_accuracy"]) == {"clean", "10"}
        assert "validation speakers" in s[mode]["real_validation_measured_on"]
        assert "test split" in s[mode]["test_measured_on"]
        # all of the real folder includes the training speakers: no accuracy on it
        assert "all" not in s["real_recordings"][mode] and "all_note" in s["real_recordings"][mode]
    # with real recordings both runs distil a teacher trained first on the same data
    t = json.loads((out / "teacher" / "config.json").read_text())
    assert t["bank"]["mode"] == "conventional" and t["classifier"]["width"] == 128
    for mode in ("conventional", "codesign"):
        c = json.loads((out / mode / "config.json").read_text())
        assert c["distill"]["teacher"] == str(out / "teacher") and c["distill"]["distill_weight"] == 0.5
    assert s["teacher"]["classifier_params"] > 3 * 22000 and "clean" in s["teacher"]["real_validation_accuracy"]
    assert s["savings_verdict"]["judged_on"] == "real validation speakers"
    assert s["savings_verdict"]["mean_accuracy_change_points"] == s["real_mean_accuracy_change_points"]
    real_all = next(line for line in md.splitlines() if line.startswith("| codesign | real |"))
    assert "not an accuracy" in real_all

"""Training on several sources: options, config round trip, a run on toy folders with a
speaker split of a labelled "real" folder, extra unknown words and a separate noise folder."""

from __future__ import annotations

import json

import pytest

from learnafe.data.sources import group_of
from learnafe.training.config import TrainConfig
from training_helpers import make_real_folders, tiny_config


def test_config_round_trip_with_sources(tmp_path):
    cfg = TrainConfig.from_dict({"real": "r", "real_weight": 2, "real_val_fraction": 0.4,
                                 "sources": ["u", {"path": "w", "weight": 0.5, "use": "all"}],
                                 "noise": "n", "epoch_clips": 300, "data_weight": 0.5})
    assert cfg.data.sources == [{"path": "u", "weight": 1.0, "use": "auto", "name": "u"},
                           {"path": "w", "weight": 0.5, "use": "all", "name": "w"}]
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_file(p) == cfg
    # an old config.json without the new options still loads, with their defaults
    old = {k: v for k, v in TrainConfig().to_dict().items()
           if k not in ("real", "real_weight", "real_val_fraction", "real_split_seed", "sources",
                        "epoch_clips", "data_weight")}
    assert TrainConfig.from_dict(old) == TrainConfig()
    for bad, match in (({"real_val_fraction": 1.0}, "real_val_fraction"),
                       ({"real_weight": -1.0}, "real_weight"),
                       ({"data_weight": 0.0}, "at least one training source"),
                       ({"sources": [{"path": "x", "use": "some"}]}, "sources")):
        with pytest.raises(ValueError, match=match):
            TrainConfig.from_dict(bad)


def test_cli_source_specs():
    from learnafe.commands.train import _source_spec

    assert _source_spec("a/b") == {"path": "a/b"}
    assert _source_spec("a/b:0.3") == {"path": "a/b", "weight": 0.3}
    assert _source_spec("a/b:0.3:all") == {"path": "a/b", "weight": 0.3, "use": "all"}
    assert _source_spec('{"path": "x", "weight": 2}') == {"path": "x", "weight": 2}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_real_folders(tmp_path_factory.mktemp("sources"))


def test_training_on_several_sources(folders, tmp_path, monkeypatch):
    import learnafe.training.data as tdata
    from learnafe.training.trainer import Trainer, train

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    toy, real, unk, noise = folders
    opts = tiny_config(toy, epochs=2, real=str(real), noise=str(noise), real_weight=2.0,
                       sources=[{"path": str(unk), "weight": 1.0, "use": "all"}], epoch_clips=64)
    m = train(opts, tmp_path / "run")
    assert m["status"] == "finished"
    # the recorded configuration holds the sources; the run resumes with it (no retraining)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["real"] == str(real) and saved["data"]["sources"][0]["path"] == str(unk)
    assert TrainConfig.from_dict(saved) == TrainConfig.from_dict(opts)
    # clips per epoch follow the weights (data 1 : real 2 : unknown words 1 of 64)
    assert [d["clips_per_epoch"] for d in m["training_sources"]] == [16, 32, 16]
    assert m["n_train"] == 64
    # validation on the held-out real speakers; the report uses the last 10 % of the noise
    rv = m["real_validation"]
    assert rv["noise"].endswith("[0.9-1]") and str(noise) in rv["noise"]
    t = Trainer(TrainConfig.from_dict(opts), tmp_path / "probe")
    t._build()
    val_groups = {group_of(t.val_ds.name(i)) for i in range(len(t.val_ds))}
    mix = t.train_ds
    train_groups = {group_of(mix.sources[1].name(j)) for j in range(len(mix.sources[1]))}
    assert val_groups and train_groups and not val_groups & train_groups
    assert rv["n"] == len(t.val_ds)
    assert "training speakers" in m["training_data"] and str(unk) in m["training_data"]
    # training noise: the first 80 % of the given recordings, for every source
    assert all(getattr(s, "noise", None) is None or s.noise.portion == (0.0, 0.8)
               for s in (mix.sources[0], mix.sources[1].base, mix.sources[2]))
    m2 = train(opts, tmp_path / "run")
    assert m2["real_validation"] == rv


def test_real_report_leaves_out_the_clips_that_chose_the_epoch(folders, tmp_path, monkeypatch):
    """With ``limit_val`` the best epoch is chosen on a subset of the validation speakers' clips;
    the reported accuracy is on the others only, and ``learnafe evaluate RUN`` repeats it."""
    import learnafe.training.data as tdata
    from learnafe.training.run_evaluation import EvaluateOptions, evaluate_run
    from learnafe.training.trainer import Trainer, train

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    toy, real, unk, noise = folders
    opts = tiny_config(toy, epochs=1, real=str(real), noise=str(noise), epoch_clips=32)
    all_clips, _ = tdata.real_validation_set(TrainConfig.from_dict(opts), "test")
    opts["limit_val"] = len(all_clips) // 2
    m = train(opts, tmp_path / "run")
    t = Trainer(TrainConfig.from_dict(opts), tmp_path / "probe")
    t._build()
    chosen = {t.val_ds.name(i) for i in range(len(t.val_ds))}
    report, _ = tdata.real_report_set(TrainConfig.from_dict(opts))
    reported = {report.name(i) for i in range(len(report))}
    assert len(chosen) == opts["limit_val"] and reported and not chosen & reported
    assert chosen | reported == {all_clips.name(i) for i in range(len(all_clips))}
    assert m["real_validation"]["n"] == len(report)
    again = evaluate_run(tmp_path / "run", None, EvaluateOptions(progress=False))
    assert again["n"] == len(report) and again["accuracy"] == m["real_validation"]["accuracy"]

"""The search with the real trainer: each trial a (tiny) co-design training run."""

from __future__ import annotations

import json

import pytest

from learnafe._migrate import FLAT_NAMES
from learnafe.search import Parameter, SearchConfig, SearchSpace, run_search
from learnafe.search.pareto import dominates
from learnafe.training.config import TrainConfig
from training_helpers import make_real_folders, make_toy_dataset, tiny_config


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy"))


def _settings(toy):
    settings = tiny_config(toy, epochs=1)
    for key in ("threads", "progress"):  # the search sets these per trial
        settings.pop(key)
    return settings


@pytest.mark.slow
def test_training_search_two_workers(toy, tmp_path):
    space = SearchSpace([Parameter("lr_frontend", "log", 1e-3, 1e-1), Parameter("lambda_i", "log", 1e-3, 3.0),
                         Parameter("lambda_c", "log", 1e-3, 3.0)])
    cfg = SearchConfig(space=space, trial_function="learnafe.search.trials:training_trial",
                       reference_function="learnafe.search.trials:training_reference", settings=_settings(toy))
    out = tmp_path / "search"
    result = run_search(cfg, out, budget=4, workers=2, progress=False)
    assert len(result.records) == 4
    assert all(r["status"] == "ok" for r in result.records), [r["error"] for r in result.records]
    # The reference is the conventional (frozen) bank trained with the same settings.
    ref_metrics = json.loads((out / "trials" / "reference" / "metrics.json").read_text())
    assert ref_metrics["mode"] == "conventional"
    assert result.reference["objectives"]["power_w"] == pytest.approx(ref_metrics["power_w"])
    assert result.summary["normalisation"]["power_ref_w"] == pytest.approx(ref_metrics["power_w"])
    for r in result.records:
        run = out / "trials" / f"{r['trial']:04d}"
        metrics = json.loads((run / "metrics.json").read_text())
        config = TrainConfig.from_run_file(run / "config.json").to_dotted()
        assert metrics["mode"] == "codesign" and (run / "bank.json").is_file()
        for name, value in r["params"].items():
            assert config[FLAT_NAMES.get(name, name)] == pytest.approx(value)
        assert config["output.seed"] == r["seed"] and config["output.threads"] == 1
        assert r["objectives"]["error"] == pytest.approx(metrics["val_error"])
        assert r["objectives"]["power_w"] == pytest.approx(metrics["power_w"])
        assert r["objectives"]["area_um2"] == pytest.approx(metrics["area_um2"])
        bank = json.loads((run / "bank.json").read_text())
        assert r["objectives"]["power_w"] == pytest.approx(bank["total_power_w"], rel=1e-6)
    objs = [[p["objectives"][k] for k in ("error", "power_w", "area_um2")] for p in result.pareto]
    assert objs and not any(dominates(a, b) for a in objs for b in objs)
    assert (out / "pareto.png").is_file()


def test_training_settings_that_the_search_owns_are_refused(toy, tmp_path):
    from learnafe.search.trial_context import TrialContext
    from learnafe.search.trials import training_trial

    ctx = TrialContext(trial=0, seed=0, run_dir=tmp_path / "t", settings={**_settings(toy), "mode": "conventional"},
                       threads=1)
    with pytest.raises(ValueError, match="must not set 'mode'"):
        training_trial({"lambda_i": 0.1}, ctx)
    ctx.settings = {**_settings(toy), "no_such_option": 1}
    with pytest.raises(ValueError, match="no_such_option"):
        training_trial({"lambda_i": 0.1}, ctx)


@pytest.fixture(scope="module")
def real_folders(tmp_path_factory):
    return make_real_folders(tmp_path_factory.mktemp("real"))


def _real_settings(real_folders, **kw):
    toy, real, unk, noise = real_folders
    settings = tiny_config(toy, epochs=2, real=str(real), noise=str(noise), epoch_clips=32,
                           sources=[{"path": str(unk), "weight": 0.5, "use": "all"}], **kw)
    for key in ("threads", "progress"):
        settings.pop(key)
    return settings


@pytest.mark.parametrize("function", ["training_trial", "training_reference"])
def test_real_trial_objective_is_the_selection_clips_and_its_report_the_rest(real_folders, tmp_path, monkeypatch,
                                                                            function):
    """On real speakers a trial's ``error`` is the best epoch's error on the ``limit_val``
    selection clips of the validation speakers, recomputed here from the best checkpoint on
    those clips; ``report_accuracy`` is on the other clips of the same speakers (no clip in both)."""
    import learnafe.search.trials as trials
    import learnafe.training.data as tdata
    from learnafe.search.trial_context import TrialContext
    from learnafe.training.evaluate import evaluate_dataset
    from learnafe.training.rundir import load_run
    from learnafe.training.trainer import Trainer

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    probe = TrainConfig.from_dict(_real_settings(real_folders))
    all_clips, _ = tdata.real_validation_set(probe, "test")
    limit = len(all_clips) // 2
    settings = _real_settings(real_folders, limit_val=limit)
    ctx = TrialContext(trial=0, seed=3, run_dir=tmp_path / "t", settings=settings, threads=1)
    out = getattr(trials, function)({"lambda_i": 0.2}, ctx)

    cfg = TrainConfig.from_run_file(tmp_path / "t" / "config.json")
    t = Trainer(cfg, tmp_path / "probe")
    t._build()
    chosen = {t.val_ds.name(i) for i in range(len(t.val_ds))}
    report, report_noise = tdata.real_report_set(cfg)
    reported = {report.name(i) for i in range(len(report))}
    assert len(chosen) == limit == out["selection_clips"] and len(reported) == out["report_clips"]
    assert reported and not chosen & reported
    assert chosen | reported == {all_clips.name(i) for i in range(len(all_clips))}

    run = load_run(tmp_path / "t")
    sel = evaluate_dataset(run.model, t.val_ds, snrs=cfg.evaluation.eval_snrs, noise=t.val_noise)
    rep = evaluate_dataset(run.model, report, snrs=cfg.evaluation.eval_snrs, noise=report_noise)
    assert out["error"] == pytest.approx(1.0 - sel["mean_accuracy"], abs=1e-12)
    assert out["report_accuracy"] == pytest.approx(rep["mean_accuracy"], abs=1e-12)
    for condition, value in rep["accuracy"].items():
        assert out[f"report_accuracy_{condition}"] == pytest.approx(value, abs=1e-12)
    assert run.metrics["mode"] == ("codesign" if function == "training_trial" else "conventional")


def test_real_trial_without_limit_val_is_refused(real_folders, tmp_path):
    from learnafe.search.trial_context import TrialContext
    from learnafe.search.trials import training_reference, training_trial

    ctx = TrialContext(trial=0, seed=0, run_dir=tmp_path / "t", settings=_real_settings(real_folders), threads=1)
    for fn in (training_trial, training_reference):
        with pytest.raises(ValueError, match="data.limit_val"):
            fn({}, ctx)
    assert not (tmp_path / "t" / "metrics.json").exists()

"""Running searches: local processes, Dask, failures, kill and resume, CLI, report."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from learnafe.search import Journal, Parameter, SearchConfig, SearchSpace, run_search
from learnafe.search.pareto import dominates
from learnafe.search.runner import _Optimiser, normalised, scalarised
from learnafe.search.trials import analytic_objectives

ANALYTIC = "learnafe.search.trials:analytic_trial"
ANALYTIC_REF = "learnafe.search.trials:analytic_reference"


def _space():
    return SearchSpace([Parameter("lr_frontend", "log", 1e-4, 1e-1), Parameter("lambda_i", "log", 1e-3, 10.0),
                        Parameter("lambda_c", "log", 1e-3, 10.0)])


def _config(**kw) -> SearchConfig:
    args = dict(space=_space(), trial_function=ANALYTIC, reference_function=ANALYTIC_REF, optimizer="NGOpt",
                settings={}, seed=0)
    args.update(kw)
    return SearchConfig(**args)


def _check_front(result):
    ok = [r for r in result.records if r["status"] == "ok"]
    front = result.pareto
    assert front, "the Pareto set is empty"
    objs = lambda r: [r["objectives"][k] for k in ("error", "power_w", "area_um2")]  # noqa: E731
    for a in front:
        for b in front:
            assert not dominates(objs(a), objs(b))
    front_ids = {r["trial"] for r in front}
    for r in ok:
        if r["trial"] not in front_ids:
            assert any(dominates(objs(f), objs(r)) for f in front)


def test_tiny_search_with_two_local_worker_processes(tmp_path):
    cfg = _config(trial_function="search_helpers:threads_trial")
    result = run_search(cfg, tmp_path / "s", budget=4, workers=2, threads_per_trial=1, progress=False)
    records = Journal(tmp_path / "s" / "journal.jsonl").read()
    assert sorted(r["trial"] for r in records) == [0, 1, 2, 3]
    assert all(r["status"] == "ok" for r in records)
    for r in records:
        # The objectives are the trial function's, computed in a worker process with its thread limit.
        expect = analytic_objectives(r["params"])
        assert r["objectives"] == pytest.approx(expect, rel=1e-12)
        assert r["metrics"]["pid"] != os.getpid()
        assert r["metrics"]["torch_threads"] == 1 and r["metrics"]["omp_env"] == 1
        assert r["duration_s"] >= 0 and r["worker"].endswith(str(r["metrics"]["pid"]))
        assert set(r) >= {"params", "objectives", "status", "error", "duration_s", "worker", "seed"}
    _check_front(result)
    out = tmp_path / "s"
    for name in ("trials.csv", "trials.json", "pareto.json", "summary.json", "pareto.png", "reference.json"):
        assert (out / name).is_file(), name
    assert len((out / "trials.csv").read_text().strip().splitlines()) == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 4 and summary["ok"] == 4 and summary["failed"] == 0
    assert summary["reference"]["objectives"] == pytest.approx(analytic_objectives({"lr": 3e-3}))
    assert summary["normalisation"]["source"] == "reference design"


def test_failing_and_crashing_trials_are_recorded_and_the_search_completes(tmp_path):
    # Trial 1 raises; trial 3's worker process dies (os._exit), which breaks the local pool.
    cfg = _config(settings={"fail_trials": [1], "crash_trials": [3]})
    result = run_search(cfg, tmp_path / "s", budget=6, workers=1, progress=False)
    by_id = {r["trial"]: r for r in result.records}
    assert sorted(by_id) == [0, 1, 2, 3, 4, 5]
    assert by_id[1]["status"] == "failed" and "fails on purpose" in by_id[1]["error"]
    assert "Traceback" in by_id[1]["error"] and by_id[1]["objectives"] is None
    assert by_id[3]["status"] == "failed" and "worker process died" in by_id[3]["error"]
    assert all(by_id[i]["status"] == "ok" for i in (0, 2, 4, 5))
    assert result.summary["failed"] == 2 and result.summary["ok"] == 4
    assert {r["trial"] for r in result.pareto} <= {0, 2, 4, 5}
    csv_rows = (tmp_path / "s" / "trials.csv").read_text().splitlines()
    assert "fails on purpose" in csv_rows[2]


def test_nonfinite_objective_is_a_failure_told_as_a_penalty(tmp_path):
    cfg = _config(trial_function="search_helpers:bad_result_trial", failure_penalty=[1.0, 5.0, 5.0])
    ex = cf.ThreadPoolExecutor(1)
    # One worker: NGOpt then picks a sequential optimiser, which waits in ask() until every
    # candidate has been told, so a failure that was not told would hang here.
    result = run_search(cfg, tmp_path / "s", budget=3, workers=1, executor=ex, progress=False)
    ex.shutdown()
    assert [r["status"] for r in result.records] == ["failed"] * 3
    assert "not finite" in result.records[0]["error"]
    assert result.pareto == [] and not (tmp_path / "s" / "pareto.png").exists()
    opt = _Optimiser(cfg, 4, 1)
    assert opt.loss(result.records[0], {"power_ref_w": 1.0, "area_ref_um2": 1.0}) == [1.0, 5.0, 5.0]
    scalar = _Optimiser(_config(mode="scalar"), 4, 1)
    assert scalar.loss(result.records[0], {"power_ref_w": 1.0, "area_ref_um2": 1.0}) == pytest.approx(3.0)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # nevergrad's Cobyla.__del__
def test_search_without_normalisation_or_reference_is_refused(tmp_path):
    with pytest.raises(ValueError, match="power_ref_w and area_ref_um2, or a \\[trial\\] reference"):
        run_search(_config(reference_function=None), tmp_path / "s", budget=1, workers=1, progress=False)
    with pytest.raises(ValueError, match="give both power_ref_w and area_ref_um2"):
        _config(power_ref_w=1e-8)
    cfg = _config(settings={"fail_trials": [-1]})
    with pytest.raises(RuntimeError, match="reference design failed"):
        run_search(cfg, tmp_path / "r", budget=1, workers=1, executor=cf.ThreadPoolExecutor(1), progress=False)
    assert not (tmp_path / "r" / "journal.jsonl").exists()
    with pytest.raises(ValueError, match="'Cobyla' cannot run 2 trials at a time"):
        run_search(_config(optimizer="Cobyla"), tmp_path / "c", budget=2, workers=2, progress=False)


def test_resume_replays_the_journal_and_runs_only_the_missing_trials(tmp_path):
    cfg = _config()
    ex = cf.ThreadPoolExecutor(2)
    first = run_search(cfg, tmp_path / "s", budget=3, workers=2, executor=ex, progress=False)
    journal = tmp_path / "s" / "journal.jsonl"
    before = journal.read_text()
    assert len(first.records) == 3
    # Same budget: nothing to do.
    again = run_search(cfg, tmp_path / "s", budget=3, workers=2, executor=ex, progress=False)
    assert journal.read_text() == before and len(again.records) == 3
    # Larger budget: the three finished trials stay as they are, three new ones follow.
    more = run_search(cfg, tmp_path / "s", budget=6, workers=2, executor=ex, progress=False)
    ex.shutdown()
    assert journal.read_text().startswith(before)
    assert sorted(r["trial"] for r in more.records) == list(range(6))
    assert len(Journal(journal).read()) == 6
    # A different configuration is refused instead of mixing two searches.
    with pytest.raises(ValueError, match="different configuration"):
        run_search(_config(seed=1), tmp_path / "s", budget=6, workers=1, progress=False)


def test_replay_tells_every_finished_trial_to_the_optimiser(tmp_path):
    cfg = _config()
    norm = {"power_ref_w": 1e-8, "area_ref_um2": 1.6e4}
    records = []
    for i, lr in enumerate((1e-3, 3e-3, 1e-2)):
        params = {"lr_frontend": lr, "lambda_i": 0.1 * (i + 1), "lambda_c": 0.01}
        records.append({"trial": i, "status": "ok", "params": params, "objectives": analytic_objectives(params)})
    records.append({"trial": 3, "status": "failed", "params": records[0]["params"], "objectives": None})
    opt = _Optimiser(cfg, 8, 1)
    for r in records:
        opt.replay(r, norm)
    assert opt.optimizer.num_tell == 4
    told = sorted(tuple(np.round(c.losses, 12)) for c in opt.optimizer.pareto_front())
    expect = sorted(tuple(np.round(normalised(r["objectives"], norm), 12)) for r in records[:3])
    assert set(told) <= set(expect) and told   # the failure's penalty is never on the front


@pytest.mark.filterwarnings("ignore:COBYLA:UserWarning")  # scipy's note when NGOpt picks COBYLA for 1 worker
def test_scalar_mode_tells_the_weighted_sum(tmp_path):
    cfg = _config(mode="scalar", weights={"error": 1.0, "power": 0.2, "area": 0.3}, reference_function=None,
                  power_ref_w=1e-8, area_ref_um2=1.6e4)
    norm = {"power_ref_w": 2e-8, "area_ref_um2": 1e4}
    rec = {"status": "ok", "objectives": {"error": 0.25, "power_w": 1e-8, "area_um2": 5e3}}
    opt = _Optimiser(cfg, 4, 1)
    assert opt.loss(rec, norm) == pytest.approx(0.25 + 0.2 * 0.5 + 0.3 * 0.5)
    assert scalarised([0.25, 0.5, 0.5], {"error": 1.0, "power": 0.1, "area": 0.1}) == pytest.approx(0.35)
    ex = cf.ThreadPoolExecutor(1)
    result = run_search(cfg, tmp_path / "s", budget=5, workers=1, executor=ex, progress=False)
    ex.shutdown()
    assert result.summary["mode"] == "scalar" and result.summary["ok"] == 5
    assert result.summary["normalisation"] == {"power_ref_w": 1e-8, "area_ref_um2": 1.6e4, "source": "config"}
    assert result.reference is None and (tmp_path / "s" / "pareto.png").is_file()


def test_search_finds_cheaper_designs_than_the_conventional_one(tmp_path):
    """On the analytic trade-off the search must find points that save power at ~equal error."""
    ex = cf.ThreadPoolExecutor(1)
    result = run_search(_config(), tmp_path / "s", budget=30, workers=1, executor=ex, progress=False)
    ex.shutdown()
    best = result.summary["best"]["within_1_point"]
    assert best is not None
    assert best["lowest_power"]["versus_reference"]["power_saving_pct"] > 3.0
    assert best["lowest_area"]["versus_reference"]["area_saving_pct"] > 2.0
    assert best["lowest_power"]["versus_reference"]["error_change_points"] <= 1.0


def test_dask_local_cluster_gives_the_same_journal_format(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster:
        dask_result = run_search(_config(), tmp_path / "dask", budget=4, workers=2,
                                 dask_address=cluster.scheduler_address, progress=False)
    ex = cf.ThreadPoolExecutor(2)
    local_result = run_search(_config(), tmp_path / "local", budget=4, workers=2, executor=ex, progress=False)
    ex.shutdown()
    assert len(dask_result.records) == 4 and all(r["status"] == "ok" for r in dask_result.records)
    assert all(r["worker"].startswith("dask:") for r in dask_result.records)
    assert [sorted(r) for r in dask_result.records] == [sorted(r) for r in local_result.records]
    for r in dask_result.records:
        assert r["objectives"] == pytest.approx(analytic_objectives(r["params"]), rel=1e-12)
    _check_front(dask_result)
    assert json.loads((tmp_path / "dask" / "reference.json").read_text())["status"] == "ok"


def test_bad_dask_address_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(RuntimeError, match="cannot connect to the dask scheduler at 'tcp://127.0.0.1:9'"):
            run_search(_config(), tmp_path / "s", budget=1, workers=1, dask_address="tcp://127.0.0.1:9",
                       progress=False)


def _write_config(path: Path, sleep_s: float) -> Path:
    path.write_text(f"""
[search]
optimizer = "NGOpt"
seed = 5

[trial]
function = "{ANALYTIC}"
reference = "{ANALYTIC_REF}"
[trial.settings]
sleep_s = {sleep_s}

[[parameter]]
name = "lr_frontend"
type = "log"
lower = 1e-4
upper = 1e-1

[[parameter]]
name = "lambda_i"
type = "log"
lower = 1e-3
upper = 10.0
""")
    return path


def _cli(*args, **kw):
    # The interpreter running the tests finds learnafe the same way (installed, or the source tree).
    return subprocess.Popen([sys.executable, "-m", "learnafe", *args], cwd=kw.pop("cwd"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.slow
def test_killed_search_resumes_to_the_full_budget(tmp_path):
    cfg = _write_config(tmp_path / "kill.toml", sleep_s=0.5)
    out = tmp_path / "out"
    args = ["search", str(cfg), "--budget", "8", "--workers", "2", "--out", str(out), "--no-progress"]
    proc = _cli(*args, cwd=tmp_path, start_new_session=True)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed:\n" + proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL)   # the search and its worker processes, without warning
    proc.wait()
    proc.stdout.close()
    before = Journal(journal).read()
    assert 3 <= len(before) < 8
    done_ids = [r["trial"] for r in before]

    proc = _cli(*args, cwd=tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert f"resumed {len(before)} finished trial(s)" in output
    after = Journal(journal).read()
    assert len(after) == 8 and len({r["trial"] for r in after}) == 8
    assert after[:len(before)] == before                      # finished trials kept, never re-run
    assert all(r["trial"] not in done_ids for r in after[len(before):])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 8 and summary["sessions"] == 1
    assert (out / "pareto.png").is_file()


def test_cli_help_json_config_and_argument_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "learnafe", "search", "--help"], cwd=tmp_path, text=True,
                         capture_output=True)
    assert out.returncode == 0 and "--budget" in out.stdout and "--dask" in out.stdout
    from learnafe.cli import main
    from learnafe.search import load_config

    toml = _write_config(tmp_path / "c.toml", sleep_s=0.0)
    jpath = tmp_path / "c.json"
    jpath.write_text(json.dumps(load_config(toml).to_dict()))
    assert main(["search", str(jpath), "--budget", "3", "--workers", "1", "--out", str(tmp_path / "o"),
                 "--json", str(tmp_path / "summary.json"), "--no-progress", "--optimizer", "DE"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["trials"] == 3 and summary["optimizer"].startswith("DE")
    assert main(["search", str(jpath), "--budget", "0", "--out", str(tmp_path / "o")]) == 1
    # --setting overrides [trial.settings]: a different search, refused in the same directory.
    assert main(["search", str(jpath), "--budget", "3", "--out", str(tmp_path / "o"), "--optimizer", "DE",
                 "--setting", "base_error=0.3"]) == 1
    assert main(["search", str(jpath), "--budget", "2", "--workers", "1", "--out", str(tmp_path / "o2"),
                 "--no-progress", "--setting", "base_error=0.3"]) == 0
    errors = [r["objectives"]["error"] for r in Journal(tmp_path / "o2" / "journal.jsonl").read()]
    assert min(errors) >= 0.3
    assert main(["search", str(jpath), "--setting", "base_error", "--out", str(tmp_path / "o3")]) == 1
    assert main(["search", str(jpath), "--optimizer", "Nope", "--out", str(tmp_path / "o")]) == 1
    assert main(["search", str(tmp_path / "none.toml")]) == 1


def test_report_section(tmp_path):
    from learnafe.search import report_section

    ex = cf.ThreadPoolExecutor(2)
    run_search(_config(), tmp_path / "s", budget=6, workers=2, executor=ex, progress=False)
    ex.shutdown()
    md = report_section(tmp_path / "s", tmp_path / "report")
    assert md.startswith("## Design-space search")
    assert "![Pareto front of s](report/search-s-pareto.png)" in md
    assert (tmp_path / "report" / "search-s-pareto.png").is_file()
    assert "Conventional design: error 10.00 %" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| trial")]
    front = json.loads((tmp_path / "s" / "pareto.json").read_text())
    assert len(rows) == len(front) > 0
    assert report_section(tmp_path, tmp_path / "report") is None


def test_report_section_shows_the_held_out_accuracy(tmp_path):
    """Trials with a ``report_accuracy`` metric: the summary's Pareto points and the report's table
    carry it beside the objective error, the conventional line too."""
    from learnafe.search import report_section

    cfg = _config(trial_function="search_helpers:report_trial", reference_function="search_helpers:report_reference")
    ex = cf.ThreadPoolExecutor(2)
    result = run_search(cfg, tmp_path / "s", budget=5, workers=2, executor=ex, progress=False)
    ex.shutdown()
    points = {p["trial"]: p for p in result.summary["pareto"]}
    assert points and all(p["report_accuracy"] == pytest.approx(0.9 - p["objectives"]["error"])
                          for p in points.values())
    md = report_section(tmp_path / "s", tmp_path / "report")
    ref_error = result.reference["objectives"]["error"]
    assert f"report accuracy {100 * (0.9 - ref_error):.2f} %." in md
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| trial"))
    col = [c.strip() for c in header.strip("|").split("|")].index("report accuracy %")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines
            if line.startswith("| ") and not line.startswith("| trial")]
    assert len(rows) == len(points)
    for row in rows:
        assert float(row[col]) == pytest.approx(100 * points[int(row[0])]["report_accuracy"], abs=0.005)

"""Search config, search space, journal and Pareto set (no trials are run here)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from learnafe.search import Journal, Parameter, SearchSpace, load_config
from learnafe.search.pareto import dominates, front_2d, non_dominated, pareto_records
from learnafe.search.trial_context import set_path

TOML = """
[search]
optimizer = "NGOpt"
mode = "multi"
budget = 7
workers = 2
seed = 3

[trial]
function = "learnafe.search.trials:analytic_trial"
reference = "learnafe.search.trials:analytic_reference"
[trial.settings]
base_error = 0.2

[objectives]
weights = {error = 1.0, power = 0.5}

[[parameter]]
name = "lr_frontend"
type = "log"
lower = 1e-4
upper = 1e-1
init = 1e-3

[[parameter]]
name = "width"
type = "log-int"
lower = 16
upper = 128

[[parameter]]
name = "n_channels"
type = "ordered"
choices = [8, 12, 16]
"""


def _toml(tmp_path, text=TOML, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_and_json_configs_are_the_same_search(tmp_path):
    cfg = load_config(_toml(tmp_path))
    assert cfg.budget == 7 and cfg.workers == 2 and cfg.seed == 3
    assert cfg.space.names == ["lr_frontend", "width", "n_channels"]
    assert cfg.weights == {"error": 1.0, "power": 0.5, "area": 0.1}
    assert cfg.settings == {"base_error": 0.2}
    jpath = tmp_path / "s.json"
    jpath.write_text(json.dumps(cfg.to_dict()))
    again = load_config(jpath)
    assert again.hash == cfg.hash
    assert again.to_dict() == cfg.to_dict()
    # The fingerprint covers what defines the trials, not the budget or worker count.
    changed = load_config(_toml(tmp_path, TOML.replace("budget = 7", "budget = 9"), "b.toml"))
    assert changed.hash == cfg.hash
    changed = load_config(_toml(tmp_path, TOML.replace("base_error = 0.2", "base_error = 0.3"), "c.toml"))
    assert changed.hash != cfg.hash


def test_default_trial_is_training_with_conventional_reference(tmp_path):
    cfg = load_config(_toml(tmp_path, '[[parameter]]\nname = "lambda_i"\ntype = "log"\nlower = 0.01\nupper = 1\n'))
    assert cfg.trial_function == "learnafe.search.trials:training_trial"
    assert cfg.reference_function == "learnafe.search.trials:training_reference"
    assert cfg.optimizer == "NGOpt" and cfg.mode == "multi"


@pytest.mark.parametrize("text, match", [
    (TOML.replace("optimizer =", "optimiser ="), r"unknown key.*'optimiser'.*did you mean 'optimizer'"),
    (TOML.replace('type = "log"\nlower = 1e-4', 'type = "log"\nlower = 0.0'), r"lr_frontend.*lower > 0"),
    (TOML.replace("upper = 1e-1", "upper = 1e-5"), r"lr_frontend.*lower .* must be smaller than upper"),
    (TOML.replace("choices = [8, 12, 16]", "choices = [8, 8]"), r"n_channels.*duplicates"),
    (TOML.replace('type = "ordered"', 'type = "categorical"'), r"n_channels.*type 'categorical' is not one of"),
    (TOML.replace('name = "width"', 'name = "lr_frontend"'), r"defined twice: lr_frontend"),
    (TOML.replace('"NGOpt"', '"NGOptt"'), r"optimizer 'NGOptt' is not in nevergrad's registry.*NGOpt"),
    (TOML.replace('mode = "multi"', 'mode = "pareto"'), r"mode 'pareto' must be one of multi, scalar"),
    (TOML.replace("budget = 7", "budget = 0"), r"budget must be a positive integer"),
    (TOML.replace("lower = 16", "lower = 16.5"), r"width.*whole numbers"),
    (TOML.replace("init = 1e-3", "init = 1.0"), r"lr_frontend.*init 1 is outside"),
    (TOML.replace("power = 0.5", "speed = 0.5"), r"weights.*'speed'"),
    ("[search]\nbudget = 3\n", r"search space is empty"),
])
def test_bad_configs_are_refused_with_the_reason(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        load_config(_toml(tmp_path, text))


def test_bad_config_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(ValueError, match="use a .toml or .json file"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "bad.toml").write_text("[search\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_config(tmp_path / "bad.toml")


def test_log_parameters_are_searched_on_a_log_scale():
    import nevergrad as ng

    space = SearchSpace([Parameter("lr", "log", 1e-4, 1e-1), Parameter("x", "float", 1e-4, 1e-1)])
    opt = ng.optimizers.registry["RandomSearch"](parametrization=space.parametrization(seed=0), budget=400)
    values = [space.check(opt.ask().value) for _ in range(400)]
    lr = np.array([v["lr"] for v in values])
    x = np.array([v["x"] for v in values])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # Centred on the geometric mean 10^-2.5, with a real share in the lowest decade ...
    assert abs(np.median(np.log10(lr)) + 2.5) < 0.25
    assert np.mean(lr < 1e-3) > 0.15
    # ... which a linear parameter over the same range almost never visits.
    assert np.mean(x < 1e-3) < 0.05


def test_integer_and_choice_parameters_stay_in_their_domain():
    import nevergrad as ng

    space = SearchSpace([Parameter("width", "log-int", 16, 128), Parameter("depth", "int", 2, 6),
                         Parameter("n_channels", "ordered", choices=[8, 12, 16]),
                         Parameter("rectify", "choice", choices=["abs", "square"])])
    opt = ng.optimizers.registry["RandomSearch"](parametrization=space.parametrization(seed=1), budget=300)
    seen = {k: set() for k in space.names}
    for _ in range(300):
        v = space.check(opt.ask().value)
        assert isinstance(v["width"], int) and 16 <= v["width"] <= 128
        assert isinstance(v["depth"], int) and 2 <= v["depth"] <= 6
        for k in space.names:
            seen[k].add(v[k])
    assert seen["n_channels"] == {8, 12, 16} and seen["rectify"] == {"abs", "square"}
    assert seen["depth"] == {2, 3, 4, 5, 6}
    assert space.default() == {"width": 45, "depth": 4, "n_channels": 12, "rectify": "square"}


@pytest.mark.parametrize("kind", ["ordered", "choice"])
def test_choice_parameters_start_at_their_init(kind):
    """``init`` of a choice is the starting value of its parametrisation (NGOpt's first candidate),
    as for the numeric kinds."""
    import nevergrad as ng

    space = SearchSpace([Parameter("n_channels", kind, choices=[8, 12, 16], init=16),
                         Parameter("lr", "log", 1e-4, 1e-1, init=1e-3)])
    assert space.parametrization(seed=0).value == {"n_channels": 16, "lr": pytest.approx(1e-3)}
    if kind == "ordered":  # with an unordered choice NGOpt picks a method that starts at random
        opt = ng.optimizers.registry["NGOpt"](parametrization=space.parametrization(seed=0), budget=24,
                                              num_workers=2)
        assert space.check(opt.ask().value) == {"n_channels": 16, "lr": pytest.approx(1e-3)}
    # without init: the middle choice
    assert SearchSpace([Parameter("c", kind, choices=[8, 12, 16])]).parametrization().value == {"c": 12}


def test_check_refuses_values_outside_the_space():
    space = SearchSpace([Parameter("lr", "log", 1e-4, 1e-1), Parameter("c", "choice", choices=[1, 2])])
    assert space.check({"lr": 1e-3, "c": 2}) == {"lr": 1e-3, "c": 2}
    with pytest.raises(ValueError, match="'lr': value 1 is outside"):
        space.check({"lr": 1.0, "c": 2})
    with pytest.raises(ValueError, match="'c': value 3 is not one of"):
        space.check({"lr": 1e-3, "c": 3})
    with pytest.raises(ValueError, match=r"missing \['c'\], unexpected \['d'\]"):
        space.check({"lr": 1e-3, "d": 1})


def test_set_path_builds_nested_options():
    cfg = {"lr": 1.0, "frontend": {"noise": True}}
    set_path(cfg, "frontend.mismatch", 0.01)
    set_path(cfg, "lr", 2.0)
    assert cfg == {"lr": 2.0, "frontend": {"noise": True, "mismatch": 0.01}}
    with pytest.raises(ValueError, match="'lr' is a float, not a table"):
        set_path(cfg, "lr.x", 1)


# ----------------------------------------------------------------- journal
def _record(i, status="ok", error=0.1):
    return {"trial": i, "status": status, "params": {"lr": 1e-3 * (i + 1)},
            "objectives": {"error": error, "power_w": 1e-8, "area_um2": 1e4} if status == "ok" else None,
            "error": None if status == "ok" else "Traceback ...\nRuntimeError: boom", "duration_s": 0.5,
            "worker": "host:1"}


def test_journal_round_trip_and_nan(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    assert j.read() == []
    j.append(_record(0))
    j.append(_record(1, "failed"))
    j.append({**_record(2), "metrics": {"loss": float("nan"), "n": np.int64(3)}})
    got = j.read()
    assert [r["trial"] for r in got] == [0, 1, 2]
    assert got[1]["status"] == "failed" and "boom" in got[1]["error"]
    assert got[2]["metrics"] == {"loss": None, "n": 3}
    assert all(r["format"] == "learnafe-search-trial/1" for r in got)


def test_journal_survives_a_torn_last_line(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    j.append(_record(0))
    j.append(_record(1))
    with open(j.path, "a") as fh:  # a writer killed in the middle of a line
        fh.write('{"trial": 2, "status": "o')
    assert [r["trial"] for r in j.read()] == [0, 1]
    j.append(_record(2))
    assert [r["trial"] for r in j.read()] == [0, 1, 2]
    assert j.path.read_text().count("\n") == 3


def test_journal_refuses_damage_and_duplicates(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    j.append(_record(0))
    text = j.path.read_text()
    j.path.write_text("garbage\n" + text)
    with pytest.raises(ValueError, match="line 1 is damaged"):
        j.read()
    j.path.write_text(text + text)
    with pytest.raises(ValueError, match=r"trial id\(s\) \[0\] more than once"):
        j.read()
    with pytest.raises(ValueError, match="status 'done'"):
        j.append({**_record(1), "status": "done"})


# ------------------------------------------------------------------ pareto
def _brute_force_front(points):
    """Reference: a point is on the front if no other point is <= everywhere and < somewhere."""
    keep = []
    for i, p in enumerate(points):
        dominated = False
        for j, q in enumerate(points):
            if j != i and all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    pts = rng.random((60, 3))
    pts[5] = pts[7]              # an exact duplicate
    pts[10] = pts[11] + 0.01     # a point dominated by its neighbour
    pts = np.round(pts, 2)       # ties in single objectives
    got = non_dominated(pts)
    assert got.tolist() == _brute_force_front(pts.tolist())
    assert 11 not in got or 10 not in got
    for i in got:
        for j in got:
            assert not dominates(pts[i], pts[j])
    for k in set(range(len(pts))) - set(got.tolist()):
        assert any(dominates(pts[i], pts[k]) for i in got)


def test_non_dominated_agrees_with_nevergrad():
    import nevergrad as ng

    rng = np.random.default_rng(7)
    pts = rng.random((40, 3))
    opt = ng.optimizers.registry["RandomSearch"](parametrization=ng.p.Array(shape=(1,)), budget=40)
    opt.tell(ng.p.MultiobjectiveReference(), [2.0, 2.0, 2.0])
    for p in pts:
        opt.tell(opt.ask(), list(p))
    theirs = sorted(tuple(np.round(c.losses, 12)) for c in opt.pareto_front())
    ours = sorted(tuple(np.round(pts[i], 12)) for i in non_dominated(pts))
    assert ours == theirs


def test_pareto_records_ignores_failures_and_nonfinite():
    recs = [_record(0, error=0.2), _record(1, "failed"), _record(2, error=0.1), _record(3, error=0.3)]
    recs[3]["objectives"]["power_w"] = 1e-9
    recs.append({**_record(4), "objectives": {"error": math.nan, "power_w": 0.0, "area_um2": 0.0}})
    front = pareto_records(recs)
    assert [r["trial"] for r in front] == [2, 3]
    assert non_dominated(np.zeros((0, 3))).tolist() == []
    with pytest.raises(ValueError, match="2-D"):
        non_dominated([1.0, 2.0])


def test_front_2d_is_a_staircase():
    x = np.array([3.0, 1.0, 2.0, 2.5, 4.0])
    y = np.array([1.0, 3.0, 2.0, 2.5, 0.5])
    assert front_2d(x, y).tolist() == [1, 2, 0, 4]

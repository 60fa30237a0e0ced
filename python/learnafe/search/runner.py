"""The ask/tell loop: Nevergrad proposes, the executor evaluates, the journal remembers.

Search directory layout::

    OUT/search.json      the configuration, its fingerprint, the normalisation
    OUT/journal.jsonl    one line per finished trial (append-only; the resume state)
    OUT/reference.json   the conventional design evaluated once (if configured)
    OUT/trials/NNNN/     each trial's own files (e.g. a training run directory)
    OUT/trials.csv, trials.json, pareto.json, summary.json, pareto.png   (results)

What the optimiser is told
    multi-objective (default): ``[error, power / P_ref, area / A_ref]``, a loss
    vector; Nevergrad keeps the Pareto front (``optimizer.pareto_front()``).
    scalar: ``w_e * error + w_p * P / P_ref + w_a * A / A_ref``, the form of the
    paper's L_BPF with the validation error in place of the cross-entropy and
    fixed weights from ``[objectives] weights``.  ``P_ref``/``A_ref`` are
    ``[objectives] power_ref_w``/``area_ref_um2`` if given, otherwise the
    reference (conventional) design's values: the reference function runs once,
    before the first trial, and a search without either is refused.  They are
    fixed in ``search.json`` so that a resumed search tells the same numbers.

Failed trials
    A trial that raises (or whose worker process dies, or that returns a
    non-finite or negative objective) is journalled with ``status = "failed"``
    and its traceback, counts towards the budget, and is told to the optimiser
    as ``[objectives] failure_penalty`` (normalised error, power, area; default
    ``[1, 10, 10]``: every answer wrong at ten times the reference cost).  A
    penalty rather than silence, because sequential optimisers wait for every
    asked candidate to be told, and because it steers the search away from
    regions that keep failing (e.g. a learning rate that makes training diverge).
    The penalty is only the optimiser's view: the Pareto set, tables and plots are
    computed from the journal, where a failure stays a failure.

Resume
    Running the same search again (same config, same directory) reads the
    journal, tells every finished trial to a fresh optimiser (as non-asked
    candidates, or via ``suggest`` for optimisers that refuse those), and asks
    only the trials still missing to reach the budget; finished trials are never
    run twice.  A larger ``--budget`` extends a finished search.  Trials that
    were running when the search was killed are lost and replaced by new ones.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import logging
import shutil
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from learnafe._jsonio import read_json, write_json
from learnafe.search.executor import TrialExecutor
from learnafe.search.journal import Journal, json_safe
from learnafe.search.pareto import pareto_records
from learnafe.search.space import OBJECTIVES, SearchConfig, load_callable

log = logging.getLogger(__name__)

STATE_FORMAT = "learnafe-search/1"
DEFAULT_FAILURE_PENALTY = (1.0, 10.0, 10.0)
REFERENCE_TRIAL_ID = -1


@dataclasses.dataclass
class SearchResult:
    out_dir: Path
    records: list              #: all journal records, in order
    pareto: list               #: the successful, mutually non-dominated records
    reference: dict | None     #: the reference design's record (or None)
    summary: dict              #: what summary.json holds


# --------------------------------------------------------------------- state
def _read_json(path: Path):
    return read_json(path, hint="remove it to start that part again")


def _write_json(path: Path, data) -> None:
    write_json(path, json_safe(data), allow_nan=False)


class _State:
    """``search.json``: the config fingerprint and the fixed normalisation."""

    def __init__(self, out_dir: Path, config: SearchConfig):
        self.path = out_dir / "search.json"
        if self.path.is_file():
            data = _read_json(self.path)
            if data.get("config_hash") != config.hash:
                raise ValueError(
                    f"{out_dir} holds a search with a different configuration (fingerprint "
                    f"{data.get('config_hash')} vs {config.hash}); resume it with the same config and "
                    "options, or give a new --out directory")
            self.data = data
        else:
            self.data = {"format": STATE_FORMAT, "config_hash": config.hash, "config": config.to_dict(),
                         "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "normalisation": None}
            if config.power_ref_w and config.area_ref_um2:
                self.data["normalisation"] = {"power_ref_w": config.power_ref_w,
                                              "area_ref_um2": config.area_ref_um2, "source": "config"}
            self.save()

    @property
    def normalisation(self) -> dict | None:
        return self.data.get("normalisation")

    def set_normalisation(self, power_ref_w: float, area_ref_um2: float, source: str) -> dict:
        self.data["normalisation"] = {"power_ref_w": float(power_ref_w), "area_ref_um2": float(area_ref_um2),
                                      "source": source}
        log.info("normalising power by %.4g W and area by %.4g um^2 (%s)", power_ref_w, area_ref_um2, source)
        self.save()
        return self.data["normalisation"]

    def save(self) -> None:
        _write_json(self.path, self.data)


# ---------------------------------------------------------------- objectives
def normalised(objectives: dict, norm: dict) -> list[float]:
    """``[error, power / P_ref, area / A_ref]``."""
    return [float(objectives["error"]), float(objectives["power_w"]) / norm["power_ref_w"],
            float(objectives["area_um2"]) / norm["area_ref_um2"]]


def scalarised(vector, weights: dict) -> float:
    """The L_BPF-form weighted sum of a normalised objective vector."""
    return weights["error"] * vector[0] + weights["power"] * vector[1] + weights["area"] * vector[2]


class _Optimiser:
    """Nevergrad optimizer plus the config's way of turning objectives into losses."""

    def __init__(self, config: SearchConfig, budget: int, workers: int):
        import nevergrad as ng

        self.config = config
        self.space = config.space
        self.parametrization = config.space.parametrization(seed=config.seed)
        try:
            self.optimizer = ng.optimizers.registry[config.optimizer](
                parametrization=self.parametrization, budget=budget, num_workers=workers)
        except ValueError as exc:
            raise ValueError(f"optimizer {config.optimizer!r} cannot run {workers} trials at a time ({exc}); "
                             "use --workers 1 or an optimizer that runs in parallel, such as NGOpt") from exc
        if config.mode == "multi" and config.reference_point is not None:
            self.optimizer.tell(ng.p.MultiobjectiveReference(), list(config.reference_point))
        self._tell_not_asked = True

    def loss(self, record: dict, norm: dict):
        if record["status"] == "ok":
            vector = normalised(record["objectives"], norm)
        else:
            vector = list(self.config.failure_penalty or DEFAULT_FAILURE_PENALTY)
        return vector if self.config.mode == "multi" else scalarised(vector, self.config.weights)

    def ask(self):
        candidate = self.optimizer.ask()
        return candidate, self.space.check(candidate.value)

    def tell(self, candidate, record: dict, norm: dict, loss=None) -> None:
        from nevergrad.common.errors import BadLossWarning, LossTooLargeWarning

        loss = self.loss(record, norm) if loss is None else loss
        with warnings.catch_warnings():
            # Nevergrad's multi-objective scalarisation rates a point that is worse than everything seen
            # in every objective (e.g. a failure's penalty) as +inf and warns; that is intended here.
            warnings.simplefilter("ignore", BadLossWarning)
            warnings.simplefilter("ignore", LossTooLargeWarning)
            self.optimizer.tell(candidate, loss)

    def replay(self, record: dict, norm: dict) -> None:
        """Tell a journalled trial to this (fresh) optimiser."""
        from nevergrad.common.errors import TellNotAskedNotSupportedError

        loss = self.loss(record, norm)
        params = self.space.check(record["params"])
        if self._tell_not_asked:
            candidate = self.parametrization.spawn_child(new_value=params)
            try:
                self.tell(candidate, record, norm, loss)
                return
            except TellNotAskedNotSupportedError:
                self._tell_not_asked = False
        self.optimizer.suggest(params)
        self.tell(self.optimizer.ask(), record, norm, loss)

    @property
    def name(self) -> str:
        inner = getattr(self.optimizer, "optim", None)  # NGOpt and other wizards delegate
        chosen = getattr(inner, "name", None) or type(inner).__name__ if inner is not None else None
        return f"{self.config.optimizer} ({chosen})" if chosen and chosen != self.config.optimizer \
            else self.config.optimizer


# ------------------------------------------------------------------- search
def _trial_dir(out_dir: Path, trial: int) -> Path:
    return out_dir / "trials" / (f"{trial:04d}" if trial >= 0 else "reference")


def _spec(config: SearchConfig, out_dir: Path, trial: int, params: dict, threads: int, kind: str) -> dict:
    run_dir = _trial_dir(out_dir, trial)
    if run_dir.exists():  # left over from a trial that was running when the search was killed
        shutil.rmtree(run_dir)
    function = config.reference_function if kind == "reference" else config.trial_function
    return {"function": function, "params": params, "trial": trial, "kind": kind,
            "seed": config.seed + max(trial, 0), "run_dir": str(run_dir),
            "settings": config.settings, "threads": threads}


def _lost_record(spec: dict, reason: str) -> dict:
    return {"trial": spec["trial"], "kind": spec["kind"], "params": spec["params"], "seed": spec["seed"],
            "status": "failed", "objectives": None, "metrics": {}, "error": reason, "duration_s": None,
            "worker": None}


def _describe(record: dict) -> str:
    if record["status"] != "ok":
        last = (record.get("error") or "").strip().splitlines()
        return f"FAILED ({last[-1] if last else 'no message'})"
    o = record["objectives"]
    return f"error {o['error']:.4f}, power {o['power_w']:.4g} W, area {o['area_um2']:.4g} um^2"


def run_search(config: SearchConfig, out_dir, *, budget: int | None = None, workers: int | None = None,
               dask_address: str | None = None, executor: cf.Executor | None = None,
               threads_per_trial: int | None = None, progress: bool = True, plot: bool = True) -> SearchResult:
    """Run (or resume) a search until ``budget`` trials are in the journal.

    ``budget``/``workers``/``threads_per_trial`` default to the config's values.
    ``dask_address`` sends trials to a Dask scheduler; ``executor`` uses any
    ``concurrent.futures.Executor`` you already have (it is not shut down).
    """
    budget = config.budget if budget is None else budget
    workers = config.workers if workers is None else workers
    threads_per_trial = threads_per_trial or config.threads_per_trial
    for name, value in (("budget", budget), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    load_callable(config.trial_function)  # fail now, not in every worker
    if config.reference_function:
        load_callable(config.reference_function, "reference function")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = _State(out_dir, config)
    journal = Journal(out_dir / "journal.jsonl")
    records = journal.read()
    for r in records:
        config.space.check(r["params"])
    reference_path = out_dir / "reference.json"
    reference = _read_json(reference_path) if reference_path.is_file() else None
    need_reference = bool(config.reference_function) and (reference is None or reference.get("status") != "ok")
    if state.normalisation is None and not config.reference_function:
        raise ValueError("the search needs the power and area to normalise by: set [objectives] power_ref_w "
                         "and area_ref_um2, or a [trial] reference function (the conventional design)")
    if len(records) >= budget and not need_reference:
        log.info("search in %s already has %d trials (budget %d): nothing to run", out_dir, len(records), budget)
        return finish(config, out_dir, records, reference, state, plot=plot)

    opt = _Optimiser(config, budget, workers)  # before any trial: a bad optimiser choice fails fast
    pool = TrialExecutor(workers, dask_address=dask_address, threads_per_trial=threads_per_trial,
                         executor=executor)
    log.info("search %s: %s, optimiser %s, mode %s, budget %d, %s", out_dir, config.trial_function,
             config.optimizer, config.mode, budget, pool.description)
    started = time.time()
    bar = None
    try:
        if need_reference:
            # Before any trial: the reference fixes the normalisation that every tell uses (and sequential
            # optimisers block in ``ask`` until the previous candidate has been told).
            reference = _run_reference(config, out_dir, pool, reference_path)
        if state.normalisation is None:
            state.set_normalisation(reference["objectives"]["power_w"], reference["objectives"]["area_um2"],
                                    "reference design")
        norm = state.normalisation
        for r in records:
            opt.replay(r, norm)
        if records:
            log.info("resumed %d finished trial(s) from %s", len(records), journal.path)
        if progress:
            from learnafe._progress import progress as progress_bar

            bar = progress_bar(total=budget, initial=min(len(records), budget), desc="search", unit="trial")
        _loop(config, out_dir, pool, opt, journal, records, budget, workers, norm, bar)
    except BaseException:
        log.warning("search stopped: %d finished trial(s) are in %s; run the same command again to resume",
                    len(records), journal.path)
        pool.shutdown(cancel=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    pool.shutdown()
    log.info("search finished: %d trial(s) in %.1f s this session", len(records), time.time() - started)
    return finish(config, out_dir, records, reference, state, plot=plot, optimizer_name=opt.name,
                  executor=pool.description, wall_s=time.time() - started)


def _run_reference(config: SearchConfig, out_dir: Path, pool: TrialExecutor, path: Path) -> dict:
    """Evaluate the reference design (once per search directory); raise if it fails."""
    log.info("evaluating the reference design with %s", config.reference_function)
    spec = _spec(config, out_dir, REFERENCE_TRIAL_ID, {}, pool.threads, "reference")
    try:
        record = pool.submit(spec).result()
    except BrokenProcessPool:
        pool.restart()
        record = _lost_record(spec, "the worker process died while evaluating the reference design")
    _write_json(path, record)
    if record["status"] != "ok":
        raise RuntimeError(f"the reference design failed, so the search cannot start (details in {path}):\n"
                           + (record.get("error") or "").strip())
    log.info("reference design: %s", _describe(record))
    return record


def _loop(config, out_dir, pool, opt, journal, records, budget, workers, norm, bar) -> None:
    """Keep ``workers`` trials running until the journal holds ``budget`` trials."""
    in_flight: dict[cf.Future, tuple] = {}
    next_id = max((r["trial"] for r in records), default=-1) + 1
    generation = 0
    while len(records) < budget or in_flight:
        while len(in_flight) < workers and len(records) + len(in_flight) < budget:
            candidate, params = opt.ask()
            spec = _spec(config, out_dir, next_id, params, pool.threads, "trial")
            in_flight[pool.submit(spec)] = (spec, candidate, generation)
            next_id += 1
        finished, _ = cf.wait(list(in_flight), return_when=cf.FIRST_COMPLETED)
        broken = False
        for future in finished:
            spec, candidate, gen = in_flight.pop(future)
            try:
                record = future.result()
            except BrokenProcessPool:
                broken = broken or gen == generation
                record = _lost_record(spec, "the worker process died while running this trial (crash, out "
                                            "of memory or killed); every trial running in the pool at that "
                                            "moment is recorded as failed")
            except Exception as exc:  # noqa: BLE001 - e.g. a lost Dask worker
                record = _lost_record(spec, f"the executor lost this trial: {type(exc).__name__}: {exc}")
            record = journal.append(record)
            records.append(record)
            opt.tell(candidate, record, norm)
            log.info("trial %d %s in %.1f s", record["trial"], _describe(record), record["duration_s"] or 0.0)
            if bar is not None:
                ok = [r["objectives"]["error"] for r in records if r["status"] == "ok"]
                bar.update(1)
                bar.set_postfix(ok=len(ok), failed=len(records) - len(ok), front=len(pareto_records(records)),
                                best_error=f"{min(ok):.3f}" if ok else "-")
        if broken:
            # The pool is unusable.  The lost trials stay failed: resubmitting them could crash it again.
            log.warning("a worker process died; restarting the local pool")
            pool.restart()
            generation += 1


# ------------------------------------------------------------------ results
def compare(objectives: dict, reference: dict | None) -> dict | None:
    """How a point compares with the reference design: error change (points) and savings (%)."""
    if not reference or reference.get("status") != "ok":
        return None
    ref = reference["objectives"]
    return {"error_change_points": 100.0 * (objectives["error"] - ref["error"]),
            "power_saving_pct": 100.0 * (1.0 - objectives["power_w"] / ref["power_w"]),
            "area_saving_pct": 100.0 * (1.0 - objectives["area_um2"] / ref["area_um2"])}


def _point(record: dict, reference: dict | None) -> dict:
    """A Pareto point of ``summary.json``; with its ``report_accuracy`` metric when the trial has one
    (accuracy on held-out clips that the optimiser is not told, e.g. a real-speaker trial's)."""
    out = {"trial": record["trial"], "params": record["params"], "objectives": record["objectives"],
           "versus_reference": compare(record["objectives"], reference)}
    report = (record.get("metrics") or {}).get("report_accuracy")
    if report is not None:
        out["report_accuracy"] = report
    return out


def best_points(records: list, reference: dict | None, tolerance_points: float = 1.0) -> dict:
    """Headline points: lowest error, and the cheapest designs at (or near) the reference accuracy."""
    ok = [r for r in records if r["status"] == "ok"]
    out = {}
    if not ok:
        return out
    out["lowest_error"] = _point(min(ok, key=lambda r: r["objectives"]["error"]), reference)
    if not reference or reference.get("status") != "ok":
        return out
    ref_error = reference["objectives"]["error"]
    for label, limit in (("at_reference_error", ref_error),
                         (f"within_{tolerance_points:g}_point", ref_error + tolerance_points / 100.0)):
        good = [r for r in ok if r["objectives"]["error"] <= limit + 1e-12]
        if good:
            out[label] = {
                "limit_error": limit,
                "lowest_power": _point(min(good, key=lambda r: r["objectives"]["power_w"]), reference),
                "lowest_area": _point(min(good, key=lambda r: r["objectives"]["area_um2"]), reference)}
        else:
            out[label] = None
    return out


def write_tables(out_dir: Path, config: SearchConfig, records: list, front: list) -> None:
    """trials.json, trials.csv and pareto.json."""
    on_front = {r["trial"] for r in front}
    _write_json(out_dir / "trials.json", records)
    _write_json(out_dir / "pareto.json", front)
    names = config.space.names
    with open(out_dir / "trials.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trial", "status", *OBJECTIVES, "on_front", "duration_s", "worker", *names, "failure"])
        for r in records:
            obj = r["objectives"] or {}
            last = (r.get("error") or "").strip().splitlines()
            writer.writerow([r["trial"], r["status"], *[obj.get(k, "") for k in OBJECTIVES],
                             int(r["trial"] in on_front), r.get("duration_s", ""), r.get("worker", ""),
                             *[r["params"].get(n, "") for n in names], last[-1] if last else ""])


def finish(config: SearchConfig, out_dir: Path, records: list, reference: dict | None, state: _State, *,
           plot: bool = True, optimizer_name: str | None = None, executor: str | None = None,
           wall_s: float | None = None) -> SearchResult:
    """Write the result files and return the :class:`SearchResult`."""
    if wall_s is not None:
        state.data.setdefault("sessions", []).append(
            {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_s": round(wall_s, 2),
             "trials_total": len(records), "optimizer": optimizer_name, "executor": executor})
        state.save()
    front = pareto_records(records)
    write_tables(out_dir, config, records, front)
    ok = [r for r in records if r["status"] == "ok"]
    sessions = state.data.get("sessions", [])
    summary = {
        "format": "learnafe-search-summary/1",
        "config_hash": config.hash,
        "trial_function": config.trial_function,
        "optimizer": optimizer_name or (sessions[-1]["optimizer"] if sessions else config.optimizer),
        "mode": config.mode,
        "parameters": config.space.to_list(),
        "trials": len(records), "ok": len(ok), "failed": len(records) - len(ok),
        "wall_s": round(sum(s["wall_s"] for s in sessions), 2),
        "trial_time_s": round(sum(r.get("duration_s") or 0.0 for r in records), 2),
        "sessions": len(sessions),
        "normalisation": state.normalisation,
        "reference": reference,
        "pareto": [_point(r, reference) for r in front],
        "best": best_points(records, reference),
    }
    _write_json(out_dir / "summary.json", summary)
    if plot and ok:
        from learnafe.search.plots import plot_front

        plot_front(records, reference, out_dir / "pareto.png", title=f"{out_dir.name}: {len(ok)} trials")
    return SearchResult(out_dir=out_dir, records=records, pareto=front, reference=reference, summary=summary)


def load_search(out_dir) -> dict:
    """The ``summary.json`` of a finished search directory."""
    path = Path(out_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir} has no summary.json: run `learnafe search` into it first")
    return _read_json(path)

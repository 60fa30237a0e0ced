"""Where trials run: local worker processes, or a Dask cluster.

Both are plain :class:`concurrent.futures.Executor` objects, so the search loop
is the same for a laptop and a cluster:

- local (default): a ``ProcessPoolExecutor`` with ``workers`` processes started
  with the ``spawn`` method (safe with torch and OpenMP), each limited to its
  share of the cores (``threads_per_trial``, default ``cpu_count // workers``)
  through ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set before anything is imported,
  ``torch.set_num_threads`` and the kernel's own thread setting;
- Dask: ``dask.distributed.Client(address).get_executor()`` when a scheduler
  address is given (``tcp://host:8786``).  Trials then run on the cluster's
  workers; each call still limits its own threads.  The search directory should
  be on a file system the workers share if the trial writes files (the training
  trial writes its run directory there); the journal itself is written only by
  the process running the search.

The function that runs on the worker, :func:`execute_trial`, never raises: a
trial that raises comes back as a ``failed`` record with the traceback.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import logging
import math
import multiprocessing
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from learnafe.search.journal import json_safe
from learnafe.search.space import OBJECTIVES, load_callable
from learnafe.search.trial_context import TrialContext

log = logging.getLogger(__name__)

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(workers: int) -> int:
    return max(1, cpu_count() // max(1, workers))


def limit_threads(threads: int) -> None:
    """Limit this process (or, under Dask threads, this task) to ``threads`` cores.

    The environment variables take effect for libraries loaded afterwards (torch and
    OpenMP read them when they start); libraries already loaded are set directly.
    Nothing heavy is imported here, so worker processes start fast.
    """
    threads = max(1, int(threads))
    for key in _THREAD_ENV:
        os.environ[key] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    ops = sys.modules.get("learnafe.ops")
    setter = getattr(ops, "set_num_threads", None)
    if callable(setter):
        setter(threads)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return f"dask:{get_worker().address}:{threading.get_ident()}"
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _objectives(result) -> tuple[dict, dict]:
    """Split a trial function's result into (objectives, other metrics); raise on bad values."""
    if not isinstance(result, dict):
        raise TypeError(f"a trial function must return a dict with {', '.join(OBJECTIVES)}, "
                        f"got {type(result).__name__}")
    missing = [k for k in OBJECTIVES if k not in result]
    if missing:
        raise KeyError(f"the trial result lacks {missing} (it has {sorted(result)})")
    objectives = {}
    for key in OBJECTIVES:
        value = result[key]
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"objective {key!r} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"objective {key!r} is not finite ({value}); the trial diverged")
        if value < 0:
            raise ValueError(f"objective {key!r} is negative ({value})")
        objectives[key] = value
    metrics = {}
    for key, value in result.items():
        if key in OBJECTIVES:
            continue
        value = json_safe(value)
        if value is None or isinstance(value, (bool, int, float, str)):
            metrics[key] = value
        elif isinstance(value, (list, dict)) and len(repr(value)) <= 20000:
            metrics[key] = value
    return objectives, metrics


def execute_trial(spec: dict) -> dict:
    """Run one trial on a worker and return its journal record (never raises).

    ``spec`` holds ``function`` ("module:callable"), ``params``, ``trial``,
    ``seed``, ``run_dir``, ``settings``, ``threads`` and ``kind``.
    """
    started = time.time()
    record = {"trial": spec["trial"], "kind": spec.get("kind", "trial"), "params": spec["params"],
              "seed": spec["seed"], "started_at": _now(), "worker": _worker_name(),
              "objectives": None, "metrics": {}, "error": None}
    try:
        limit_threads(spec["threads"])
        fn = load_callable(spec["function"])
        run_dir = Path(spec["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        ctx = TrialContext(trial=spec["trial"], seed=spec["seed"], run_dir=run_dir,
                           settings=spec.get("settings") or {}, threads=spec["threads"],
                           kind=spec.get("kind", "trial"))
        record["objectives"], record["metrics"] = _objectives(fn(dict(spec["params"]), ctx))
        record["status"] = "ok"
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a trial may fail in any way; it is recorded
        record["status"] = "failed"
        record["objectives"] = None
        record["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    record["duration_s"] = round(time.time() - started, 3)
    record["finished_at"] = _now()
    return record


class TrialExecutor:
    """A concurrent.futures executor plus what the search needs to know about it."""

    def __init__(self, workers: int, *, dask_address: str | None = None, threads_per_trial: int | None = None,
                 executor: cf.Executor | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if threads_per_trial is not None and (not isinstance(threads_per_trial, int) or threads_per_trial < 1):
            raise ValueError(f"threads_per_trial must be a positive integer, got {threads_per_trial!r}")
        self.workers = workers
        self.dask_address = dask_address
        self._client = None
        self._external = executor is not None
        if executor is not None:
            self.threads = threads_per_trial or 1
            self._executor = executor
            self.description = f"{type(executor).__name__} (given), {workers} concurrent trials"
        elif dask_address:
            self.threads = threads_per_trial or 1
            self._executor = self._dask(dask_address)
            self.description = (f"dask scheduler {dask_address}, {workers} concurrent trials, "
                                f"{self.threads} thread(s) each")
        else:
            self.threads = threads_per_trial or default_threads(workers)
            self._executor = self._local()
            self.description = (f"{workers} local worker process(es), {self.threads} thread(s) each "
                                f"({cpu_count()} cores)")

    def _local(self) -> cf.Executor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=limit_threads, initargs=(self.threads,))

    def _dask(self, address: str) -> cf.Executor:
        try:
            from distributed import Client
        except ImportError as exc:
            raise RuntimeError("--dask needs the 'distributed' package: pip install 'dask[distributed]'") from exc
        try:
            self._client = Client(address)  # timeout: dask's distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"cannot connect to the dask scheduler at {address!r} ({exc}); "
                               "check the address (tcp://host:8786) and that the scheduler runs") from exc
        return self._client.get_executor(pure=False)

    @property
    def is_local(self) -> bool:
        return not self.dask_address and not self._external

    def submit(self, spec: dict) -> cf.Future:
        return self._executor.submit(execute_trial, spec)

    def restart(self) -> None:
        """Replace a broken local pool (a worker process died)."""
        if not self.is_local:
            return
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._local()

    def shutdown(self, cancel: bool = False) -> None:
        if self._external:
            return
        if self._client is not None:
            if cancel:
                self._executor.shutdown(wait=False)
            self._client.close()
            self._client = None
            return
        self._executor.shutdown(wait=not cancel, cancel_futures=cancel)

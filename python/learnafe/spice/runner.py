"""Run ngspice in batch mode and read its results into NumPy arrays.

Every simulation lives in a directory of its own choosing: the netlist
(``NAME.cir``), the raw output (``NAME.raw``) and the simulator's log
(``NAME.log``) stay there for inspection.  ngspice reads ``.spiceinit`` from its
working directory; :func:`write_spiceinit` puts the options there:

- ``set ngbehavior=hsa``: HSPICE-compatible parsing the SKY130 models need;
- ``set skywaterpdk`` / ``set ng_nomodcheck``: skip model checks that only cost time;
- ``set num_threads=1``: one thread per simulation; parallelism is over
  simulations (with two threads per run, run times on a loaded 2-core machine
  swing from milliseconds to seconds);
- ``option klu``: the KLU sparse solver.

Timeouts kill the whole process group of the simulator.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from learnafe._progress import progress as progress_bar
from learnafe.spice.locate import find_ngspice

log = logging.getLogger(__name__)

SPICEINIT = """\
* written by learnafe.spice.runner
set ngbehavior=hsa
set skywaterpdk
set ng_nomodcheck
set num_threads=1
option klu
"""

DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ChannelSimOptions:
    """How the per-channel simulations of a bank run (shared by the AC and the noise checks)."""

    #: transconductance of the model the simulation is compared with (gm/Id JSON path or dict,
    #: or a model); None: the spec's own
    gm_model: object = None
    #: process corner of the SKY130 models
    corner: str = "tt"
    #: "differential" (the balanced pair) or "half" (one half circuit)
    topology: str = "differential"
    #: "ideal" capacitors or the process's MIM capacitors
    caps: str = "ideal"
    #: simulations run in parallel
    workers: int = 2
    #: seconds one simulation may take
    timeout: float = DEFAULT_TIMEOUT_S
    #: device temperature (degrees C)
    temperature_c: float = 27.0
    #: show a progress bar
    progress: bool = True


class SpiceError(RuntimeError):
    """ngspice failed: the message carries the relevant lines of its log."""


class SpiceTimeoutError(SpiceError):
    """A simulation exceeded its time limit and was stopped (``pid``: the killed process)."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


def write_spiceinit(directory: str | Path) -> Path:
    path = Path(directory) / ".spiceinit"
    if not path.is_file() or path.read_text() != SPICEINIT:
        path.write_text(SPICEINIT)
    return path


@dataclass
class RawData:
    """One plot of an ngspice raw file."""

    title: str
    plotname: str
    flags: str
    variables: list[str]
    units: list[str]
    data: np.ndarray  # [n_points, n_variables], float64 or complex128

    def __getitem__(self, name: str) -> np.ndarray:
        key = name.lower()
        for i, v in enumerate(self.variables):
            if v.lower() == key:
                return self.data[:, i]
        raise KeyError(f"no vector {name!r} in raw file; available: {', '.join(self.variables)}")

    @property
    def scale(self) -> np.ndarray:
        """The first vector (frequency, time or the swept source)."""
        return self.data[:, 0]


def parse_raw(path: str | Path) -> list[RawData]:
    """Read an ngspice raw file (binary or ASCII, real or complex), all plots."""
    blob = Path(path).read_bytes()
    plots: list[RawData] = []
    pos = 0
    while pos < len(blob):
        # skip blank bytes between plots
        while pos < len(blob) and blob[pos:pos + 1] in (b"\n", b"\r", b" "):
            pos += 1
        if pos >= len(blob):
            break
        if not blob.startswith(b"Title:", pos):
            raise SpiceError(f"raw file {path}: unexpected data after plot {len(plots)} "
                             f"(byte {pos}); the point count in its header is wrong")
        header: dict[str, str] = {}
        variables: list[str] = []
        units: list[str] = []
        while True:
            end = blob.index(b"\n", pos)
            line = blob[pos:end].decode("latin-1").rstrip("\r")
            pos = end + 1
            key, _, rest = line.partition(":")
            key = key.strip().lower()
            if key == "variables":
                nvars = int(header["no. variables"])
                for _ in range(nvars):
                    end = blob.index(b"\n", pos)
                    parts = blob[pos:end].decode("latin-1").split()
                    pos = end + 1
                    variables.append(parts[1])
                    units.append(parts[2] if len(parts) > 2 else "")
                continue
            if key in ("binary", "values"):
                break
            header[key] = rest.strip()
        nvars = int(header["no. variables"])
        npoints = int(header["no. points"])
        flags = header.get("flags", "real").lower()
        is_complex = "complex" in flags
        if key == "binary":
            dtype = np.complex128 if is_complex else np.float64
            count = nvars * npoints
            arr = np.frombuffer(blob, dtype=dtype, count=count, offset=pos).reshape(npoints, nvars)
            pos += arr.nbytes
            data = arr.copy()
        else:
            data = np.empty((npoints, nvars), dtype=np.complex128 if is_complex else np.float64)
            tokens: list[str] = []
            needed = npoints * (nvars + 1)  # index + values
            while len(tokens) < needed and pos < len(blob):
                end = blob.find(b"\n", pos)
                end = len(blob) if end < 0 else end
                line = blob[pos:end].decode("latin-1")
                pos = end + 1
                tokens.extend(line.split())
            if len(tokens) < needed:
                raise SpiceError(f"raw file {path} ends early: {len(tokens)} of {needed} values")
            k = 0
            for p in range(npoints):
                k += 1  # point index
                for v in range(nvars):
                    tok = tokens[k]
                    k += 1
                    if is_complex:
                        re_s, im_s = tok.split(",")
                        data[p, v] = complex(float(re_s), float(im_s))
                    else:
                        data[p, v] = float(tok)
        plots.append(RawData(header.get("title", ""), header.get("plotname", ""), flags,
                             variables, units, data))
    if not plots:
        raise SpiceError(f"raw file {path} holds no data")
    return plots


@dataclass
class SimResult:
    netlist: Path
    raw_path: Path
    log_path: Path
    seconds: float
    plots: list[RawData] = field(default_factory=list)

    @property
    def raw(self) -> RawData:
        return self.plots[-1]

    def plot(self, kind: str) -> RawData:
        """The plot whose name starts with ``kind`` (e.g. "AC", "Operating", "Transient", "DC")."""
        for p in self.plots:
            if p.plotname.lower().startswith(kind.lower()):
                return p
        raise KeyError(f"no {kind!r} plot in {self.raw_path}; plots: "
                       f"{', '.join(p.plotname for p in self.plots)}")


def _error_lines(text: str) -> list[str]:
    keys = ("error", "fatal", "could not", "cannot", "singular", "timestep too small",
            "no such", "unknown")
    return [ln for ln in text.splitlines() if any(k in ln.lower() for k in keys)]


def run_netlist(netlist: str | Path, *, timeout: float = DEFAULT_TIMEOUT_S,
                ngspice: str | Path | None = None) -> SimResult:
    """Run one netlist with ``ngspice -b -r NAME.raw NAME.cir`` in its own directory.

    Raises :class:`SpiceTimeoutError` after ``timeout`` seconds (the process
    group is killed) and :class:`SpiceError` when ngspice fails or writes no data.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
    netlist = Path(netlist).resolve()
    exe = find_ngspice(ngspice)
    workdir = netlist.parent
    write_spiceinit(workdir)
    raw_path = netlist.with_suffix(".raw")
    log_path = netlist.with_suffix(".log")
    raw_path.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    with open(log_path, "w") as logf:
        proc = subprocess.Popen([str(exe), "-b", "-r", raw_path.name, netlist.name], cwd=workdir,
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise SpiceTimeoutError(
                f"ngspice on {netlist} did not finish within timeout={timeout:g} s and was "
                f"stopped; raise the timeout or simplify the analysis (log: {log_path})",
                pid=proc.pid) from None
    seconds = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    if rc != 0 or not raw_path.is_file() or raw_path.stat().st_size == 0:
        detail = "\n".join(_error_lines(text)[:15]) or text[-2000:]
        raise SpiceError(f"ngspice failed on {netlist} (exit code {rc}):\n{detail}\n(log: {log_path})")
    plots = parse_raw(raw_path)
    log.debug("ngspice %s: %.2f s", netlist.name, seconds)
    return SimResult(netlist, raw_path, log_path, seconds, plots)


def run_many(netlists: Sequence[str | Path], *, workers: int = 2,
             timeout: float = DEFAULT_TIMEOUT_S, ngspice: str | Path | None = None,
             progress: Callable[[SimResult], None] | None = None) -> list[SimResult]:
    """Run several netlists, ``workers`` simulators at a time; results in input order."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not netlists:
        return []

    def one(path):
        res = run_netlist(path, timeout=timeout, ngspice=ngspice)
        if progress is not None:
            progress(res)
        return res

    if workers == 1 or len(netlists) == 1:
        return [one(p) for p in netlists]
    with ThreadPoolExecutor(max_workers=min(workers, len(netlists))) as pool:
        return list(pool.map(one, netlists))


def run_with_progress(netlists: Sequence[str | Path], *, desc: str, unit: str, workers: int = 2,
                      timeout: float = DEFAULT_TIMEOUT_S, progress: bool = True
                      ) -> tuple[list[SimResult], float]:
    """:func:`run_many` with a progress indicator (when ``progress``; :mod:`learnafe._progress`);
    returns (results, wall seconds)."""
    bar = None
    if progress:
        bar = progress_bar(total=len(netlists), desc=desc, unit=unit)
    t0 = time.perf_counter()
    try:
        results = run_many(netlists, workers=workers, timeout=timeout,
                           progress=(lambda r: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return results, time.perf_counter() - t0

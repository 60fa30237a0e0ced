"""Progress of long loops: a bar on a terminal, plain log lines everywhere else.

:func:`progress` is the one progress indicator of the package (training, evaluation,
yield analysis, search, SPICE runs, data synthesis and caching, the demo, the
benchmarks).  It returns a tqdm bar when standard error is a terminal (or a Jupyter
kernel); otherwise -- a log file, CI, ``nohup``, a batch scheduler -- a
:class:`LogProgress` that writes a short INFO line through the ``learnafe.progress``
logger each time another 10 % of the work is done or 30 s have passed since its last
line, whichever comes first, and one line when it closes.  The lines never contain a
carriage return, and the logging level decides whether they appear (``learnafe
--quiet`` silences them).  :func:`set_quiet` switches the bars off as well.

Both indicators take the same calls: ``update(n)``, ``set_postfix(**values)``,
``set_postfix_str(text)``, ``close()``, the attribute ``n``, use as a context manager,
and iteration when built around an iterable.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger("learnafe.progress")

#: A log line each time this fraction of the total more is done ...
LOG_EVERY_FRACTION = 0.1
#: ... or this many seconds have passed since the previous line.
LOG_EVERY_SECONDS = 30.0

_quiet = False
_clock = time.monotonic


def set_quiet(quiet: bool) -> None:
    """No bars at all when ``quiet`` (log lines then depend on the logging level alone)."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    """Whether :func:`set_quiet` switched the bars off."""
    return _quiet


def interactive(stream: Any = None) -> bool:
    """True when ``stream`` (default: ``sys.stderr``) is a terminal or a Jupyter kernel's output."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", initial: int = 0, disable: bool = False, leave: bool = True):
    """A progress indicator over ``total`` units (default: ``len(iterable)`` when it has one).

    ``disable``: neither bar nor log lines (e.g. on every rank but the first).
    ``leave``: keep the finished bar on the terminal; a bar with ``leave=False`` (an inner
    loop) logs only its 30 s lines and its closing line, not every 10 %.
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if disable:
        return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, enabled=False)
    if interactive():
        if _quiet:
            return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, enabled=False)
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                    dynamic_ncols=True, file=sys.stderr)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                       every_fraction=LOG_EVERY_FRACTION if leave else None)


@contextlib.contextmanager
def logs_above_bars() -> Iterator[None]:
    """While bars are drawn on a terminal, route the root logger's console output through
    tqdm so that log lines appear above a bar instead of breaking it."""
    if not interactive() or _quiet:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min"


class LogProgress:
    """Progress as plain log lines (see the module doc); the indicator used without a terminal."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, enabled: bool = True,
                 every_fraction: float | None = LOG_EVERY_FRACTION,
                 every_seconds: float = LOG_EVERY_SECONDS):
        if total is not None and total < 0:
            raise ValueError(f"progress: total must be >= 0, got {total}")
        self.iterable = iterable
        self.total = total
        self.desc = desc or "progress"
        self.unit = unit
        self.n = initial
        self.enabled = enabled
        self.every_fraction = every_fraction
        self.every_seconds = every_seconds
        self.postfix = ""
        self.closed = False
        self._start = self._last_time = _clock()
        self._start_n = self._last_n = initial
        self._next_fraction = self._fraction_step_after(initial)

    # -- the tqdm calls the package uses ------------------------------------
    def update(self, n: int = 1) -> None:
        """``n`` more units are done; logs a line when one is due."""
        if self.closed:
            return
        self.n += n
        if not self.enabled or self.n == self._last_n:
            return
        now = _clock()
        fraction = self._fraction()
        if (fraction is not None and self._next_fraction is not None and fraction >= self._next_fraction - 1e-9) \
                or now - self._last_time >= self.every_seconds:
            self._emit(now)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **values: Any) -> None:
        """Values shown at the end of the next line (``key=value``; floats with 4 significant digits)."""
        items = dict(ordered_dict or {}, **values)
        self.postfix = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text shown at the end of the next line."""
        self.postfix = str(s)

    def close(self) -> None:
        """Log the closing line (when anything was done since the last line)."""
        if self.closed:
            return
        self.closed = True
        if self.enabled and self.n != self._last_n:
            self._emit(_clock(), final=True)

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("progress: iterate over a progress indicator built around an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    # -- lines ---------------------------------------------------------------
    def _fraction(self) -> float | None:
        return self.n / self.total if self.total else None

    def _fraction_step_after(self, n: int) -> float | None:
        if not self.total or self.every_fraction is None:
            return None
        steps = int(n / self.total / self.every_fraction + 1e-9) + 1
        return steps * self.every_fraction

    def line(self, now: float | None = None, final: bool = False) -> str:
        """The text of a log line at time ``now``."""
        now = _clock() if now is None else now
        elapsed = now - self._start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc}: {done} {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.n / self.total:.0f} %)"
        if final:
            parts.append(f"in {_duration(elapsed)}")
        else:
            parts.append(f"{_duration(elapsed)} elapsed")
            rate = (self.n - self._start_n) / elapsed if elapsed > 0 else 0.0
            if self.total and rate > 0 and self.n < self.total:
                parts.append(f"about {_duration((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts).replace("\r", " ").replace("\n", " ")

    def _emit(self, now: float, final: bool = False) -> None:
        log.info("%s", self.line(now, final))
        self._last_time, self._last_n = now, self.n
        self._next_fraction = self._fraction_step_after(self.n)

"""Search configuration and search space.

A search is described by a config file (TOML or JSON) with four sections::

    [search]                      # how to search
    optimizer = "NGOpt"           # any name in nevergrad's optimizer registry
    mode = "multi"                # "multi": Pareto front of (error, power, area)
                                  # "scalar": weighted sum in the form of L_BPF
    budget = 24                   # trials (the CLI's --budget overrides)
    workers = 2                   # concurrent trials (the CLI's --workers overrides)
    seed = 0

    [trial]                       # what one trial is
    function = "learnafe.search.trials:training_trial"
    reference = "learnafe.search.trials:training_reference"   # optional baseline
    [trial.settings]              # passed verbatim to the trial function
    ...

    [objectives]                  # only needed to override defaults
    power_ref_w = 1e-8            # normalisation; default: the reference design
    area_ref_um2 = 1e4            # (give both or neither)
    weights = {error = 1.0, power = 0.1, area = 0.1}          # scalar mode
    reference_point = [1.0, 3.0, 3.0]                         # multi mode, optional
    failure_penalty = [1.0, 10.0, 10.0]                       # told for a failed trial

    [[parameter]]                 # one table per searched parameter
    name = "optim.lr_frontend"    # dotted path into the trial's configuration
    type = "log"                  # log | float | int | log-int | choice | ordered
    lower = 1e-4
    upper = 3e-2
    init = 3e-3                   # optional starting point

``log`` and ``log-int`` parameters are searched on a logarithmic scale (learning
rates, loss weights spanning decades, channel widths); ``choice`` is an
unordered categorical choice and ``ordered`` a choice whose neighbours are
related (numbers of channels).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import importlib
import json
import math
from pathlib import Path
from typing import Any, Callable

PARAMETER_TYPES = ("log", "float", "int", "log-int", "choice", "ordered")
MODES = ("multi", "scalar")
#: Objective names, in the order they are given to the optimiser.
OBJECTIVES = ("error", "power_w", "area_um2")
DEFAULT_TRIAL = "learnafe.search.trials:training_trial"
DEFAULT_REFERENCE = "learnafe.search.trials:training_reference"
DEFAULT_OPTIMIZER = "NGOpt"
_HALF_STEP = 0.4999

_SECTIONS = {"search", "trial", "objectives", "parameter"}
_SEARCH_KEYS = {"optimizer", "mode", "budget", "workers", "seed", "threads_per_trial"}
_TRIAL_KEYS = {"function", "reference", "settings"}
_OBJECTIVE_KEYS = {"power_ref_w", "area_ref_um2", "weights", "reference_point", "failure_penalty"}
_WEIGHT_KEYS = {"error", "power", "area"}
_PARAM_KEYS = {"name", "type", "lower", "upper", "choices", "init"}


def _unknown(keys, allowed, where: str) -> None:
    extra = sorted(set(keys) - set(allowed))
    if extra:
        hints = []
        for key in extra:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"{where}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(sorted(allowed))}")


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched parameter.  ``name`` is a dotted path into the trial's configuration."""

    name: str
    type: str
    lower: float | None = None
    upper: float | None = None
    choices: tuple | None = None
    init: Any = None

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        if not isinstance(self.name, str) or not self.name or any(not part for part in self.name.split(".")):
            raise ValueError(f"parameter name must be a non-empty dotted path like 'optim.lr', got {self.name!r}")
        if self.type not in PARAMETER_TYPES:
            raise ValueError(f"{where}: type {self.type!r} is not one of {', '.join(PARAMETER_TYPES)}")
        if self.type in ("choice", "ordered"):
            if self.lower is not None or self.upper is not None:
                raise ValueError(f"{where}: a {self.type} parameter takes 'choices', not lower/upper")
            if not isinstance(self.choices, (list, tuple)) or len(self.choices) < 2:
                raise ValueError(f"{where}: 'choices' must be a list of at least two values, got {self.choices!r}")
            if len(set(map(json.dumps, self.choices))) != len(self.choices):
                raise ValueError(f"{where}: 'choices' contains duplicates: {list(self.choices)!r}")
            object.__setattr__(self, "choices", tuple(self.choices))
            if self.init is not None and self.init not in self.choices:
                raise ValueError(f"{where}: init {self.init!r} is not one of the choices {list(self.choices)!r}")
            return
        if self.choices is not None:
            raise ValueError(f"{where}: 'choices' is only for choice/ordered parameters; use lower/upper")
        if self.lower is None or self.upper is None:
            raise ValueError(f"{where}: type {self.type!r} needs both 'lower' and 'upper'")
        lower = _number(self.lower, f"{where}: lower")
        upper = _number(self.upper, f"{where}: upper")
        if not lower < upper:
            raise ValueError(f"{where}: lower ({lower:g}) must be smaller than upper ({upper:g})")
        if self.type in ("log", "log-int") and lower <= 0:
            raise ValueError(f"{where}: a log-scaled parameter needs lower > 0, got {lower:g} "
                             "(use type = \"float\" for ranges that include zero)")
        if self.type in ("int", "log-int"):
            if lower != int(lower) or upper != int(upper):
                raise ValueError(f"{where}: integer bounds must be whole numbers, got {lower:g}..{upper:g}")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if self.init is not None:
            init = _number(self.init, f"{where}: init")
            if not lower <= init <= upper:
                raise ValueError(f"{where}: init {init:g} is outside [{lower:g}, {upper:g}]")
            if self.type in ("int", "log-int") and init != int(init):
                raise ValueError(f"{where}: init of an integer parameter must be whole, got {init:g}")

    @property
    def is_log(self) -> bool:
        return self.type in ("log", "log-int")

    def default(self):
        """The starting value: ``init`` or the (geometric) middle of the range."""
        if self.choices is not None:
            return self.init if self.init is not None else self.choices[len(self.choices) // 2]
        if self.init is not None:
            value = float(self.init)
        elif self.is_log:
            value = math.sqrt(self.lower * self.upper)
        else:
            value = 0.5 * (self.lower + self.upper)
        return int(round(value)) if self.type in ("int", "log-int") else value

    def check(self, value):
        """Validate one value of this parameter (e.g. from a journal) and return it normalised."""
        where = f"parameter {self.name!r}"
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"{where}: value {value!r} is not one of {list(self.choices)!r}")
            return value
        number = _number(value, where)
        # Nevergrad's log transform round-trips within a few ulp; allow that much.
        slack = 1e-9 * max(abs(self.lower), abs(self.upper))
        if not self.lower - slack <= number <= self.upper + slack:
            raise ValueError(f"{where}: value {number:g} is outside [{self.lower:g}, {self.upper:g}]")
        number = min(max(number, self.lower), self.upper)
        if self.type in ("int", "log-int"):
            if abs(number - round(number)) > 1e-9:
                raise ValueError(f"{where}: value {number!r} is not a whole number")
            return int(round(number))
        return number

    def to_nevergrad(self):
        import nevergrad as ng

        init = self.default()
        if self.type in ("choice", "ordered"):
            cls = ng.p.Choice if self.type == "choice" else ng.p.TransitionChoice
            param = cls(list(self.choices))
            param.value = init  # the starting point: ``init`` or the middle choice
            return param
        lower, upper = self.lower, self.upper
        if self.type in ("int", "log-int"):
            # Widen by just under half a step so that rounding gives every integer, the two ends
            # included, an equal share of the continuous range.
            lower, upper = lower - _HALF_STEP, upper + _HALF_STEP
        if self.is_log:
            param = ng.p.Log(init=float(init), lower=lower, upper=upper)
        else:
            param = ng.p.Scalar(init=float(init), lower=lower, upper=upper)
        if self.type in ("int", "log-int"):
            param = param.set_integer_casting()
        return param


class SearchSpace:
    """An ordered set of :class:`Parameter` with a nevergrad parametrisation."""

    def __init__(self, parameters: list[Parameter]):
        if not parameters:
            raise ValueError("the search space is empty: add at least one [[parameter]] table to the config")
        names = [p.name for p in parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter(s) defined twice: {', '.join(dupes)}")
        for a in names:
            for b in names:
                if b.startswith(a + "."):
                    raise ValueError(f"parameter {b!r} is inside parameter {a!r}; a path cannot be both")
        self.parameters = list(parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def __len__(self) -> int:
        return len(self.parameters)

    def default(self) -> dict:
        return {p.name: p.default() for p in self.parameters}

    def check(self, params: dict) -> dict:
        """Validate a full parameter dictionary; returns it with normalised types."""
        if not isinstance(params, dict):
            raise ValueError(f"parameters must be a dictionary, got {type(params).__name__}")
        missing = [n for n in self.names if n not in params]
        extra = [n for n in params if n not in self.names]
        if missing or extra:
            raise ValueError(f"parameters do not match the search space: missing {missing}, unexpected {extra}")
        return {p.name: p.check(params[p.name]) for p in self.parameters}

    def parametrization(self, seed: int | None = None):
        """The nevergrad ``Dict`` parametrisation (seeded when ``seed`` is given)."""
        import nevergrad as ng
        import numpy as np

        param = ng.p.Dict(**{p.name: p.to_nevergrad() for p in self.parameters})
        if seed is not None:
            param.random_state = np.random.RandomState(seed)
        return param

    def to_list(self) -> list[dict]:
        out = []
        for p in self.parameters:
            d = {"name": p.name, "type": p.type}
            if p.choices is not None:
                d["choices"] = list(p.choices)
            else:
                d["lower"], d["upper"] = p.lower, p.upper
            if p.init is not None:
                d["init"] = p.init
            out.append(d)
        return out


def load_callable(path: str, what: str = "trial function") -> Callable:
    """Import ``"package.module:function"``; clear errors for the usual mistakes."""
    if not isinstance(path, str) or path.count(":") != 1:
        raise ValueError(f"{what} must be given as 'package.module:function', got {path!r}")
    module_name, attr = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what} {path!r}: cannot import module {module_name!r} ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{what} {path!r}: module {module_name!r} has no callable {attr!r}")
    return fn


@dataclasses.dataclass
class SearchConfig:
    """A parsed search configuration (see the module docstring for the file format)."""

    space: SearchSpace
    trial_function: str = DEFAULT_TRIAL
    reference_function: str | None = None
    settings: dict = dataclasses.field(default_factory=dict)
    optimizer: str = DEFAULT_OPTIMIZER
    mode: str = "multi"
    budget: int = 16
    workers: int = 1
    seed: int = 0
    threads_per_trial: int | None = None
    power_ref_w: float | None = None
    area_ref_um2: float | None = None
    weights: dict = dataclasses.field(default_factory=lambda: {"error": 1.0, "power": 0.1, "area": 0.1})
    reference_point: list | None = None
    failure_penalty: list | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"[search] mode {self.mode!r} must be one of {', '.join(MODES)}")
        for key in ("budget", "workers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"[search] {key} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"[search] seed must be a non-negative integer, got {self.seed!r}")
        if self.threads_per_trial is not None and (not isinstance(self.threads_per_trial, int)
                                                   or self.threads_per_trial < 1):
            raise ValueError(f"[search] threads_per_trial must be a positive integer, got {self.threads_per_trial!r}")
        check_optimizer(self.optimizer)
        for key in ("power_ref_w", "area_ref_um2"):
            value = getattr(self, key)
            if value is not None and (_number(value, f"[objectives] {key}") <= 0):
                raise ValueError(f"[objectives] {key} must be positive, got {value!r}")
        if (self.power_ref_w is None) != (self.area_ref_um2 is None):
            raise ValueError("[objectives] give both power_ref_w and area_ref_um2, or neither (then the "
                             "reference design's power and area are used)")
        if not isinstance(self.weights, dict):
            raise ValueError("[objectives] weights must be a table like {error = 1.0, power = 0.1, area = 0.1}")
        _unknown(self.weights, _WEIGHT_KEYS, "[objectives] weights")
        weights = {"error": 1.0, "power": 0.1, "area": 0.1}
        weights.update({k: _number(v, f"[objectives] weights.{k}") for k, v in self.weights.items()})
        if any(v < 0 for v in weights.values()) or not any(v > 0 for v in weights.values()):
            raise ValueError(f"[objectives] weights must be >= 0 with at least one > 0, got {weights}")
        self.weights = weights
        for key in ("reference_point", "failure_penalty"):
            value = getattr(self, key)
            if value is not None:
                if not isinstance(value, (list, tuple)) or len(value) != len(OBJECTIVES):
                    raise ValueError(f"[objectives] {key} must be a list of {len(OBJECTIVES)} numbers "
                                     f"(normalised error, power, area), got {value!r}")
                setattr(self, key, [_number(v, f"[objectives] {key}") for v in value])
        if not isinstance(self.settings, dict):
            raise ValueError("[trial] settings must be a table")

    @property
    def hash(self) -> str:
        """Fingerprint of everything that defines the trials (not budget/workers)."""
        ident = {"space": self.space.to_list(), "trial": self.trial_function, "reference": self.reference_function,
                 "settings": self.settings, "mode": self.mode, "optimizer": self.optimizer, "seed": self.seed,
                 "power_ref_w": self.power_ref_w, "area_ref_um2": self.area_ref_um2,
                 "weights": self.weights, "reference_point": self.reference_point,
                 "failure_penalty": self.failure_penalty}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "search": {"optimizer": self.optimizer, "mode": self.mode, "budget": self.budget,
                       "workers": self.workers, "seed": self.seed,
                       "threads_per_trial": self.threads_per_trial},
            "trial": {"function": self.trial_function, "reference": self.reference_function,
                      "settings": copy.deepcopy(self.settings)},
            "objectives": {"power_ref_w": self.power_ref_w, "area_ref_um2": self.area_ref_um2,
                           "weights": dict(self.weights), "reference_point": self.reference_point,
                           "failure_penalty": self.failure_penalty},
            "parameter": self.space.to_list(),
        }

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> "SearchConfig":
        where = source or "search config"
        if not isinstance(data, dict):
            raise ValueError(f"{where}: the top level must be a table")
        _unknown(data, _SECTIONS, where)
        search = data.get("search", {}) or {}
        trial = data.get("trial", {}) or {}
        objectives = data.get("objectives", {}) or {}
        params = data.get("parameter", []) or []
        _unknown(search, _SEARCH_KEYS, f"{where} [search]")
        _unknown(trial, _TRIAL_KEYS, f"{where} [trial]")
        _unknown(objectives, _OBJECTIVE_KEYS, f"{where} [objectives]")
        if not isinstance(params, list):
            raise ValueError(f"{where}: 'parameter' must be a list of tables ([[parameter]] in TOML)")
        parsed = []
        for i, p in enumerate(params):
            if not isinstance(p, dict):
                raise ValueError(f"{where}: parameter #{i + 1} must be a table")
            _unknown(p, _PARAM_KEYS, f"{where} parameter #{i + 1} ({p.get('name', '?')})")
            if "name" not in p or "type" not in p:
                raise ValueError(f"{where}: parameter #{i + 1} needs a 'name' and a 'type'")
            parsed.append(Parameter(**p))
        kwargs = dict(space=SearchSpace(parsed), source=source)
        kwargs.update({k: v for k, v in search.items()})
        if "function" in trial:
            kwargs["trial_function"] = trial["function"]
        if "reference" in trial:
            # An empty string or false switches the reference design off.
            kwargs["reference_function"] = trial["reference"] or None
        elif trial.get("function", DEFAULT_TRIAL) == DEFAULT_TRIAL:
            kwargs["reference_function"] = DEFAULT_REFERENCE
        kwargs["settings"] = trial.get("settings", {}) or {}
        kwargs.update(objectives)
        return cls(**kwargs)


def check_optimizer(name: str) -> None:
    """Raise a helpful error when ``name`` is not in nevergrad's optimizer registry."""
    import nevergrad as ng

    if not isinstance(name, str) or name not in ng.optimizers.registry:
        close = difflib.get_close_matches(str(name), list(ng.optimizers.registry), n=3)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ValueError(f"optimizer {name!r} is not in nevergrad's registry{hint}; "
                         f"the default {DEFAULT_OPTIMIZER!r} picks a method for the budget and worker count")


def read_config_file(path: str | Path) -> dict:
    """Read a TOML (``.toml``) or JSON (``.json``) file into a dictionary."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search config {str(path)!r} does not exist")
    text = path.read_text()
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON: {exc}") from exc
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib
            except ModuleNotFoundError as exc:
                raise RuntimeError("reading TOML needs Python >= 3.11 or the 'tomli' package; "
                                   "or write the config as JSON") from exc
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from exc
    raise ValueError(f"search config {str(path)!r}: use a .toml or .json file")


def load_config(path: str | Path) -> SearchConfig:
    """Parse a search config file (TOML or JSON)."""
    return SearchConfig.from_dict(read_config_file(path), source=str(path))

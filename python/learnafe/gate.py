"""The deployment gate: does a deployed bank keep the learned bank's promise?

A co-designed run promises a bank (its ``bank.json``: each channel's f0 and Q,
from the bank's own circuit model) and an accuracy (its classifier on the
run's own front end).  A deployment -- the transistor-level circuit
(``learnafe verify``) or the XyloAudio 3 chip bank (``learnafe export-xylo``) --
passes when, before any fine-tuning:

- every channel's centre frequency is within ``f0_pct`` (default 2 %) of the spec,
- every channel's Q is within ``q_pct`` (default 5 %) of the spec,
- the mean accuracy over the evaluation conditions drops by at most
  ``accuracy_points`` (default 1 point, i.e. 0.01), and so does the clean accuracy
  (``clean_points``, default the same; None: not checked).  Both commands measure it
  with the run's classifier on all of the run's held-out clips, pooled
  (:func:`learnafe.training.evaluate.heldout_sets`: the test split, and the real
  validation speakers of a run trained with them), and record their number as
  ``accuracy_clips``.

:func:`check` returns the JSON-ready verdict ``{"passed": bool, "failures": [...],
...}`` that both commands write into their result files and reports.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateThresholds:
    """Limits of the deployment gate (percent of the spec; accuracy in points = 1/100)."""

    f0_pct: float = 2.0
    q_pct: float = 5.0
    accuracy_points: float = 1.0
    clean_points: float | None = 1.0

    def __post_init__(self):
        for name in ("f0_pct", "q_pct", "accuracy_points"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"gate threshold {name} must be a number >= 0, got {v!r}")
        if self.clean_points is not None and not (math.isfinite(self.clean_points) and self.clean_points >= 0):
            raise ValueError(f"gate threshold clean_points must be >= 0 or None, got {self.clean_points!r}")


def _clean_key(acc: Mapping[str, float]) -> str | None:
    for key in acc:
        if str(key).lower() in ("clean", "inf", "none"):
            return key
    return None


def check(*, f0_error_pct: Sequence[float] | None = None, q_error_pct: Sequence[float] | None = None,
          reference_accuracy: Mapping[str, float] | None = None,
          deployed_accuracy: Mapping[str, float] | None = None,
          reference_mean: float | None = None, deployed_mean: float | None = None,
          thresholds: GateThresholds | None = None, what: str = "deployed bank") -> dict:
    """The gate's verdict for one deployment.

    Args:
        f0_error_pct, q_error_pct: per-channel signed errors against the bank's spec, in %.
        reference_accuracy, deployed_accuracy: accuracy per condition (e.g. ``{"clean": .8,
            "20dB": .7}``) of the run's own front end and of the deployed one, same classifier.
        reference_mean, deployed_mean: their mean accuracies (default: mean of the dicts).
        thresholds: :class:`GateThresholds` (defaults: 2 %, 5 %, 1 point, 1 point clean).
        what: the deployment's name in the messages.
    """
    th = thresholds or GateThresholds()
    failures: list[str] = []
    out: dict = {"thresholds": asdict(th)}
    for key, errs, limit in (("f0", f0_error_pct, th.f0_pct), ("q", q_error_pct, th.q_pct)):
        if errs is None:
            continue
        errs = [float(e) for e in errs]
        worst = max(range(len(errs)), key=lambda i: abs(errs[i]))
        out[f"max_abs_{key}_error_pct"] = abs(errs[worst])
        bad = [i for i, e in enumerate(errs) if abs(e) > limit]
        out[f"{key}_failing_channels"] = bad
        if bad:
            label = "f0" if key == "f0" else "Q"
            failures.append(f"{label} misses the spec by more than {limit:g} % in {len(bad)} of "
                            f"{len(errs)} channels (worst: channel {worst}, {errs[worst]:+.2f} %)")
    if reference_accuracy is not None and deployed_accuracy is not None:
        ref_m = reference_mean if reference_mean is not None else (
            sum(reference_accuracy.values()) / len(reference_accuracy))
        dep_m = deployed_mean if deployed_mean is not None else (
            sum(deployed_accuracy.values()) / len(deployed_accuracy))
        drop = 100.0 * (ref_m - dep_m)
        out["mean_accuracy"] = {"reference": ref_m, "deployed": dep_m, "drop_points": drop}
        if drop > th.accuracy_points:
            failures.append(f"mean accuracy drops by {drop:.2f} points ({ref_m:.4f} -> {dep_m:.4f}), "
                            f"more than {th.accuracy_points:g}")
        ck = _clean_key(reference_accuracy)
        if ck is not None and ck in deployed_accuracy:
            cdrop = 100.0 * (reference_accuracy[ck] - deployed_accuracy[ck])
            out["clean_accuracy"] = {"reference": reference_accuracy[ck],
                                     "deployed": deployed_accuracy[ck], "drop_points": cdrop}
            if th.clean_points is not None and cdrop > th.clean_points:
                failures.append(f"clean accuracy drops by {cdrop:.2f} points "
                                f"({reference_accuracy[ck]:.4f} -> {deployed_accuracy[ck]:.4f}), "
                                f"more than {th.clean_points:g}")
    out["passed"] = not failures
    out["failures"] = failures
    if failures:
        log.warning("deployment gate FAILED for the %s: %s", what, "; ".join(failures))
    else:
        log.info("deployment gate passed for the %s", what)
    return out


def check_held_out(*, f0_error_pct: Sequence[float] | None = None, q_error_pct: Sequence[float] | None = None,
                   held_out: Mapping | None = None, reference: str = "", deployed: str = "",
                   thresholds: GateThresholds | None = None, what: str = "deployed bank") -> dict:
    """:func:`check` with the accuracies of the ``reference`` and ``deployed`` front ends on the
    pooled clips of a held-out comparison (``held_out``: the result of
    :func:`learnafe.training.evaluate.compare_frontends`; None: no accuracy check).  The verdict
    also records ``accuracy_clips`` (pooled) and ``accuracy_sets`` (clips per set)."""
    pooled = held_out["pooled"] if held_out else None
    out = check(f0_error_pct=f0_error_pct, q_error_pct=q_error_pct,
                reference_accuracy=pooled[reference]["accuracy"] if pooled else None,
                deployed_accuracy=pooled[deployed]["accuracy"] if pooled else None,
                reference_mean=pooled[reference]["mean_accuracy"] if pooled else None,
                deployed_mean=pooled[deployed]["mean_accuracy"] if pooled else None,
                thresholds=thresholds, what=what)
    if pooled:
        out["accuracy_clips"] = pooled["n"]
        out["accuracy_sets"] = {k: v["n"] for k, v in held_out["sets"].items()}
    return out


def markdown(gate: Mapping | None, what: str = "deployed bank") -> str:
    """One paragraph for a report: PASSED / FAILED with the reasons."""
    if not gate:
        return ""
    th = gate["thresholds"]
    head = (f"**Deployment gate ({what}): {'PASSED' if gate['passed'] else 'FAILED'}** "
            f"(f0 within {th['f0_pct']:g} %, Q within {th['q_pct']:g} % of the bank's spec, "
            f"at most {th['accuracy_points']:g} point(s) of mean accuracy lost before fine-tuning)")
    facts = []
    if "max_abs_f0_error_pct" in gate:
        facts.append(f"max |f0 error| {gate['max_abs_f0_error_pct']:.2f} %")
    if "max_abs_q_error_pct" in gate:
        facts.append(f"max |Q error| {gate['max_abs_q_error_pct']:.2f} %")
    if "mean_accuracy" in gate:
        clips = f" over {gate['accuracy_clips']} held-out clips" if "accuracy_clips" in gate else ""
        facts.append(f"mean accuracy drop {gate['mean_accuracy']['drop_points']:+.2f} points{clips}")
    if "clean_accuracy" in gate:
        facts.append(f"clean accuracy drop {gate['clean_accuracy']['drop_points']:+.2f} points")
    lines = [head + (": " + ", ".join(facts) + "." if facts else ".")]
    lines += [f"- {f}" for f in gate["failures"]]
    lines += [f"- note: {n}" for n in gate.get("notes", [])]
    return "\n".join(lines) + "\n"


def add_arguments(parser, show_defaults: bool = True) -> None:
    """``--gate-f0-pct``, ``--gate-q-pct``, ``--gate-accuracy-points``, ``--strict-gate``
    (``show_defaults``: append ``[default]`` to the help; False leaves the default to the
    parser's help formatter)."""
    d = GateThresholds()

    def dflt(v):
        return f" [{v:g}]" if show_defaults else ""

    parser.add_argument("--gate-f0-pct", type=float, default=d.f0_pct,
                        help="deployment gate: max |f0 error| vs the bank's spec, %%" + dflt(d.f0_pct))
    parser.add_argument("--gate-q-pct", type=float, default=d.q_pct,
                        help="deployment gate: max |Q error| vs the bank's spec, %%" + dflt(d.q_pct))
    parser.add_argument("--gate-accuracy-points", type=float, default=d.accuracy_points,
                        help="deployment gate: max loss of mean (and clean) accuracy before "
                             "fine-tuning, points" + dflt(d.accuracy_points))
    parser.add_argument("--strict-gate", action="store_true",
                        help="exit with status 3 when the deployment gate fails")


def thresholds_from_args(args) -> GateThresholds:
    return GateThresholds(f0_pct=args.gate_f0_pct, q_pct=args.gate_q_pct,
                          accuracy_points=args.gate_accuracy_points,
                          clean_points=args.gate_accuracy_points)


__all__ = ["GateThresholds", "check", "check_held_out", "markdown", "add_arguments", "thresholds_from_args"]

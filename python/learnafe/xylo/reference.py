"""Access to rockpool's XyloAudio 3 reference simulator, with or without samna.

rockpool (PyPI) ships the chip's reference filter bank (``ChipButterworth``),
the divisive-normalisation spike generator and the rasteriser under
``rockpool.devices.xylo.syns65302``; that package's ``__init__`` imports the
hardware driver ``samna``, which is not needed for simulation.  When the
normal import fails for that reason, the parent packages are registered as
bare namespace modules (their ``__init__`` files are not executed) so the
simulation module files load directly.  Nothing else of rockpool is altered.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from pathlib import Path

import numpy as np

from learnafe.xylo.design import XYLO_SAMPLE_RATE, XyloChannel

log = logging.getLogger(__name__)

_PKG = "rockpool.devices.xylo.syns65302"
_AFE = _PKG + ".afe"


class ReferenceUnavailable(ImportError):
    """rockpool is not installed (``pip install rockpool``)."""


def rockpool_available() -> bool:
    return importlib.util.find_spec("rockpool") is not None


def _register_bare_packages() -> None:
    spec = importlib.util.find_spec("rockpool")
    root = Path(spec.submodule_search_locations[0])
    chain = ["rockpool.devices", "rockpool.devices.xylo", _PKG, _AFE]
    for name in chain:
        if name in sys.modules:
            continue
        path = root.joinpath(*name.split(".")[1:])
        if not path.is_dir():
            raise ReferenceUnavailable(f"rockpool has no package {name} (at {path}); "
                                       "rockpool 3.x is needed")
        if name == "rockpool.devices":
            importlib.import_module(name)  # plain docstring package
            continue
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        mod.__package__ = name
        mod.__file__ = None
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, mod)


def load_module(name: str):
    """Import ``rockpool.devices.xylo.syns65302.<name>`` (e.g. ``"afe.digital_filterbank"``).

    rockpool reports at import, through the root logger, which optional
    backends (jax, numba) it did not find; that chatter is kept below WARNING.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        return _load_module(name)
    finally:
        root.setLevel(level)


def _load_module(name: str):
    if not rockpool_available():
        raise ReferenceUnavailable("rockpool is not installed; `pip install rockpool`")
    full = f"{_PKG}.{name}"
    try:
        return importlib.import_module(full)
    except ImportError as exc:
        if "samna" not in str(exc):
            raise ReferenceUnavailable(f"cannot import {full}: {exc}") from exc
        log.debug("rockpool's %s needs samna; loading the simulation modules directly", _PKG)
    # A failed package import may leave half-initialised modules behind.
    for key in [k for k in sys.modules if k == _PKG or k.startswith(_PKG + ".")
                or k == "rockpool.devices.xylo"]:
        if getattr(sys.modules[key], "__file__", None) is not None or key.endswith("__init__"):
            del sys.modules[key]
    _register_bare_packages()
    return importlib.import_module(full)


def chip_butterworth_class():
    """rockpool's ``ChipButterworth`` class."""
    return load_module("afe.digital_filterbank").ChipButterworth


def reference_filterbank(select_filters=None):
    """A rockpool ``ChipButterworth`` instance (all 16 default filters by default)."""
    return chip_butterworth_class()(select_filters=select_filters)


def reference_with_table(channels):
    """A ``ChipButterworth`` whose ``bd_list`` holds ``channels`` (XyloChannel rows)."""
    dfb = load_module("afe.digital_filterbank")
    ref = dfb.ChipButterworth(select_filters=tuple(range(len(channels))))
    ref.bd_list = [dfb.BlockDiagram(B_worst_case=c.B_worst_case, B_b=c.B_b, B_af=c.B_af,
                                    a1=c.a1, a2=c.a2, scale_out=c.scale_out, B_in=c.B_in,
                                    B_a=c.B_a, B_wf=c.B_wf) for c in channels]
    return ref


def reference_overflow_error():
    """The exception class the reference raises on overflow."""
    return load_module("afe.digital_filterbank").OverflowError


def reference_filter(ref, x, *, prepend_reversed: bool = True, scale_out: bool = False):
    """Run the reference's pure-python filter path on int64 ``x [T]``; returns
    ``[C, T]`` like :meth:`XyloA3FilterBank.filter`.

    rockpool 3.1's ``ChipButterworth.evolve`` cannot take this path itself: its
    ``_auto_batch`` casts the input to float and its own integer type check
    then refuses it.  This function performs exactly the steps of ``evolve``'s
    python branch (reverse-and-prepend, ``_filter`` per channel -- AR then MA
    with the overflow checks --, trim, optional ``scale_out``) with rockpool's
    ``_filter``.
    """
    sig = np.asarray(x, dtype=np.int64)
    if sig.ndim != 1:
        raise ValueError("reference_filter takes one signal [T]")
    T = sig.shape[0]
    if prepend_reversed:
        sig = np.concatenate((np.flip(sig, axis=0), sig), axis=0)
    out = np.asarray([ref._filter(bd, sig) for bd in ref.bd_list], dtype=np.int64)
    if scale_out:
        out = np.einsum("ij, j -> ij", out.T, np.asarray([bd.scale_out for bd in ref.bd_list])).T
    return out[:, -T:] if prepend_reversed else out


def import_table_from_rockpool(select_filters=None):
    """The default table as rockpool ships it, as XyloChannel rows."""
    ref = reference_filterbank(select_filters)
    return [XyloChannel(B_worst_case=int(bd.B_worst_case), B_b=int(bd.B_b), B_af=int(bd.B_af),
                        a1=int(bd.a1), a2=int(bd.a2), scale_out=float(bd.scale_out),
                        B_in=int(bd.B_in), B_a=int(bd.B_a), B_wf=int(bd.B_wf))
            for bd in ref.bd_list]


def reference_spike_raster(y, cfg):
    """rockpool's divisive-normalisation spike generator (python path) and ``Raster`` on
    one filter output ``y [C, T]`` (as :meth:`XyloA3FilterBank.filter` returns it, with
    the reverse-and-prepend trick): spike counts ``[C, F]``.

    rockpool 3.1's ``DivisiveNormalization.evolve`` casts integer input to float
    (``_auto_batch``), after which its own integer shifts fail; this performs the
    steps of its python branch (reverse-and-prepend, ``py_spike_gen``, trim) and then
    ``Raster.evolve``.  ``cfg`` is a :class:`learnafe.xylo.features.SpikeConfig`.
    """
    dn = load_module("afe.divisive_normalization")
    raster = load_module("afe.raster")
    y = np.asarray(y, dtype=np.int64)
    C, T = y.shape
    sig = np.concatenate((np.flip(y.T, axis=0), y.T), axis=0)

    def full(v):
        return np.broadcast_to(np.asarray(v, dtype=np.int64), (C,)).copy()

    mode = np.full(C, 1 if cfg.mode == "divisive_norm" else 0, dtype=np.int64)
    spikes, _ = dn.py_spike_gen(sig_in=sig, mode_vec=mode,
                                spike_rate_scale_bitshift1=full(cfg.rate_scale_bitshift[0]),
                                spike_rate_scale_bitshift2=full(cfg.rate_scale_bitshift[1]),
                                low_pass_bitshift=full(cfg.low_pass_bitshift), EPS_vec=full(cfg.eps),
                                fixed_threshold_vec=full(cfg.fixed_threshold),
                                joint_normalization=cfg.joint_normalization)
    r = raster.Raster(shape=(C, C), fs=XYLO_SAMPLE_RATE,
                      rate_downsample_factor=cfg.down_sampling_factor, max_num_spikes=cfg.max_spikes)
    out, _, _ = r.evolve(spikes[T:, :])
    return np.asarray(out).reshape(-1, C).T


def reference_features(ref, x, cfg):
    """rockpool's AFESim chain on one 14-bit signal ``x [T]``, python paths throughout:
    ``ChipButterworth`` (:func:`reference_filter`), then :func:`reference_spike_raster`.
    Spike counts ``[C, F]``."""
    return reference_spike_raster(reference_filter(ref, x), cfg)

"""Training configuration: one flat, JSON-serialisable dataclass.

Every field is a plain number, string, list or dict so that a configuration
round-trips through ``config.json``, a search trial can be described by a
dict of overrides, and every field is also a ``learnafe train`` flag
(``lr_frontend`` -> ``--lr-frontend``).  :meth:`TrainConfig.validate` checks
ranges and raises a :class:`ValueError` naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from learnafe._jsonio import read_json

__all__ = ["TrainConfig", "MODES", "EVAL_SNRS", "DEFAULT_DATA", "resolve_config", "LEGACY_DEFAULTS"]

MODES = ("codesign", "conventional")
#: Fixed evaluation SNRs in dB (plus "clean"), the paper's protocol.
EVAL_SNRS = (5.0, 10.0, 15.0, 20.0)
#: Where ``learnafe data synth --size small`` writes the embedded default data set.
DEFAULT_DATA = "data/synth-small"
#: Options added after runs were first written, with the value a run's ``config.json``
#: written before them meant (:meth:`TrainConfig.from_run_file`): such runs used the
#: weak-inversion gm model and a free bank, and still load and resume that way.
LEGACY_DEFAULTS = {"gm_model": "weak_inversion", "min_spacing": 0.0, "train_corners": "",
                   "train_mismatch": "", "output_conductance": False}
#: Process corners ``train_corners`` may list.
CORNER_NAMES = ("tt", "ss", "ff")


@dataclass
class TrainConfig:
    """All settings of one training run (see docs/training.md for the meaning of each)."""

    # --- data ---------------------------------------------------------------
    data: str = DEFAULT_DATA            # data set root (Speech Commands layout)
    sample_rate: int = 20000            # Hz; audio is resampled to it
    clip_seconds: float = 1.0           # clips are padded/cropped to this length
    train_split: str = "train"
    val_split: str = "validation"
    test_split: str = "test"
    limit_train: int = 0                # use only the first N training clips (0: all)
    limit_val: int = 0                  # use only the first N validation/test clips (0: all)
    noise: str = ""                     # noise folder for training mixing and the fixed-SNR
                                        # evaluation sets; "" = the data set's _background_noise_
    # --- several sources (docs/training.md, "Training on several sources") --
    data_weight: float = 1.0            # sampling weight of `data`'s training split (0: not used)
    real: str = ""                      # labelled real speech (12-class or Speech Commands layout),
                                        # split by speaker: one part trains, the other validates
    real_weight: float = 1.0            # sampling weight of the real training speakers (0: validate only)
    real_val_fraction: float = 0.5      # share of every class of `real` on the validation side
    real_split_seed: int = 0            # seed of the speaker split
    sources: list = field(default_factory=list)   # more training sources:
                                        # [{"path": DIR, "weight": W, "use": "auto|train|all|speaker-train"}]
    epoch_clips: int = 0                # clips per epoch drawn from the sources (0: their total)
    # --- augmentation (training only) ---------------------------------------
    snr_low_db: float = 5.0             # SNR-aware training: noise mixed at U(low, high) dB
    snr_high_db: float = 20.0
    p_noise: float = 0.85               # fraction of training clips that get noise
    gain_db: float = 10.0               # random level change, uniform in +-gain_db
    time_shift_ms: float = 100.0        # random circular-free shift, uniform in +-time_shift_ms
    speed: float = 0.10                 # speed/pitch perturbation: resample by U(1-s, 1+s)
    time_masks: int = 2                 # SpecAugment-like masks on the feature map
    time_mask_frames: int = 10
    freq_masks: int = 1
    freq_mask_channels: int = 2
    # --- front end ----------------------------------------------------------
    mode: str = "codesign"              # "codesign" (trainable bank) or "conventional" (frozen)
    n_channels: int = 16
    f_low: float = 100.0                # Hz, centre of the lowest conventional channel
    f_high: float = 8000.0              # Hz, centre of the highest conventional channel
    q: float = 0.0                      # constant Q of the conventional design (0: neighbours
                                        # cross at their -3 dB points, 3.41 for 16 x 100 Hz-8 kHz)
    gm_model: str = "sky130-tt"         # transconductance model: shipped SKY130 table sky130-tt/-ss/-ff,
                                        # "weak_inversion", or a gm/Id JSON file
    output_conductance: bool = True     # the devices' gds from the gm/Id table in design and training
                                        # (false: ideal devices, as before it existed)
    min_spacing: float = 1.1            # each centre >= min_spacing x its lower neighbour (0: free bank)
    train_corners: str = ""             # "tt,ss,ff": a process corner drawn per training batch ("": off)
    train_mismatch: str = ""            # "sky130": SKY130 mismatch drawn per training batch ("": off)
    frontend: dict = field(default_factory=dict)   # extra AnalogFilterBank options (override the above)
    # --- classifier ---------------------------------------------------------
    width: int = 64
    depth: int = 4
    dropout: float = 0.1
    input_norm: str = "clip"
    # --- loss L_BPF = lambda_ce CE + lambda_i P/P_ref + lambda_c A/A_ref -----
    lambda_ce: float = 1.0
    lambda_i: float = 0.05
    lambda_c: float = 0.05
    label_smoothing: float = 0.05
    # --- optimisation -------------------------------------------------------
    lr_frontend: float = 0.01
    lr_classifier: float = 0.003
    weight_decay: float = 0.01          # classifier only; the bank's log-scale factors get none
    batch_size: int = 64
    epochs: int = 12
    max_steps: int = 0                  # stop after this many optimiser steps (0: no limit)
    warmup_steps: int = 100
    scheduler: str = "cosine"           # "cosine" or "constant" (after warm-up)
    grad_clip: float = 5.0              # max gradient norm (0: off)
    early_stop: int = 0                 # stop after N epochs without validation improvement (0: off)
    # --- evaluation ---------------------------------------------------------
    eval_snrs: list = field(default_factory=lambda: list(EVAL_SNRS))
    eval_seed: int = 20250700
    # --- bookkeeping --------------------------------------------------------
    seed: int = 0
    checkpoint_every: int = 0           # also checkpoint every N steps (0: once per epoch)
    threads: int = 0                    # torch/OpenMP threads per process (0: library default)
    progress: bool = True               # tqdm bars

    # ------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping; unknown keys are an error that lists the valid ones."""
        if not isinstance(d, Mapping):
            raise ValueError(f"TrainConfig.from_dict: expected a mapping, got {type(d).__name__}")
        names = {f.name for f in cls.fields()}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid options: {sorted(names)}")
        cfg = cls(**{k: _copy(v) for k, v in d.items()})
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        return cls.from_dict(read_json(path, "config file"))

    @classmethod
    def from_run_file(cls, path: str | os.PathLike) -> "TrainConfig":
        """The configuration of a run directory (its ``config.json``, which the trainer writes
        whole): an option the file lacks predates the file and takes its
        :data:`LEGACY_DEFAULTS` value, so an old run rebuilds exactly as it was trained."""
        d = read_json(path, "run config", "the run directory is damaged")
        if not isinstance(d, Mapping):
            raise ValueError(f"{path}: a run's config.json must hold a JSON object")
        return cls.from_dict({**LEGACY_DEFAULTS, **d})

    def to_dict(self) -> dict:
        return {f.name: _copy(getattr(self, f.name)) for f in self.fields()}

    def replace(self, **overrides) -> "TrainConfig":
        d = self.to_dict()
        d.update(overrides)
        return TrainConfig.from_dict(d)

    def validate(self) -> "TrainConfig":
        """Check every field; raises ValueError naming the field and the accepted range."""
        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise ValueError(f"training option {name}={getattr(self, name)!r} is invalid: {what}")

        for f in self.fields():  # coerce numeric strings from the command line / JSON ints
            v = getattr(self, f.name)
            if f.type in ("int", int) and isinstance(v, float) and v.is_integer():
                setattr(self, f.name, int(v))
            if f.type in ("float", float) and isinstance(v, int) and not isinstance(v, bool):
                setattr(self, f.name, float(v))
        need(self.mode in MODES, "mode", f"use one of {MODES}")
        need(isinstance(self.data, str) and self.data != "", "data", "give a data set folder")
        need(self.sample_rate >= 8000, "sample_rate", "use at least 8000 Hz")
        need(0.05 <= self.clip_seconds <= 10.0, "clip_seconds", "use 0.05 to 10 s")
        for name in ("limit_train", "limit_val", "max_steps", "warmup_steps", "early_stop",
                     "checkpoint_every", "threads", "time_masks", "freq_masks",
                     "time_mask_frames", "freq_mask_channels", "epoch_clips", "real_split_seed"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name,
                 "must be an integer >= 0")
        need(isinstance(self.noise, str), "noise", "give a folder of noise wavs (or \"\")")
        need(isinstance(self.real, str), "real", "give a folder of labelled real speech (or \"\")")
        for name in ("data_weight", "real_weight"):
            need(isinstance(getattr(self, name), float) and getattr(self, name) >= 0, name,
                 "must be a sampling weight >= 0")
        need(0.0 < self.real_val_fraction < 1.0, "real_val_fraction",
             "must be in (0, 1): the share of every class held out as validation speakers")
        from learnafe.data.sources import normalise_sources  # here: `learnafe.data` loads torch

        try:
            self.sources = normalise_sources(self.sources)
        except ValueError as exc:
            raise ValueError(f"training option sources={self.sources!r} is invalid: {exc}") from None
        n_weighted = (self.data_weight > 0) + (bool(self.real) and self.real_weight > 0) + sum(
            s["weight"] > 0 for s in self.sources)
        need(n_weighted >= 1, "data_weight", "at least one training source needs a weight > 0")
        need(self.snr_low_db <= self.snr_high_db, "snr_low_db", "must not exceed snr_high_db")
        need(0.0 <= self.p_noise <= 1.0, "p_noise", "must be a probability in [0, 1]")
        need(self.gain_db >= 0, "gain_db", "must be >= 0 dB")
        need(self.time_shift_ms >= 0, "time_shift_ms", "must be >= 0")
        need(0.0 <= self.speed < 0.5, "speed", "must be in [0, 0.5)")
        need(isinstance(self.n_channels, int) and self.n_channels >= 1, "n_channels", "must be >= 1")
        need(0 < self.f_low < self.f_high < self.sample_rate / 2, "f_low",
             f"need 0 < f_low < f_high < sample_rate/2 ({self.sample_rate / 2:g} Hz)")
        need(self.q >= 0, "q", "must be > 0 (or 0 for the -3 dB crossing Q)")
        need(isinstance(self.gm_model, str) and self.gm_model != "", "gm_model",
             "use sky130-tt, sky130-ss, sky130-ff, weak_inversion or a gm/Id JSON file")
        need(isinstance(self.output_conductance, bool), "output_conductance", "must be true or false")
        need(isinstance(self.min_spacing, float) and (self.min_spacing == 0 or 1.0 <= self.min_spacing <= 4.0),
             "min_spacing", "use 0 (a free bank) or a ratio in [1, 4] (1.1: centres at least 10 % apart)")
        corners = [c for c in self.train_corners.split(",") if c.strip()] if isinstance(self.train_corners, str) else None
        need(corners is not None and all(c.strip() in CORNER_NAMES for c in corners), "train_corners",
             f"use a comma-separated list of {CORNER_NAMES} (e.g. tt,ss,ff) or '' (off)")
        need(self.train_mismatch in ("", "sky130"), "train_mismatch",
             "use 'sky130' (SKY130 mismatch figures drawn per batch) or '' (off)")
        need(isinstance(self.frontend, dict), "frontend", "must be a JSON object of AnalogFilterBank options")
        need(isinstance(self.width, int) and self.width >= 1, "width", "must be >= 1")
        need(isinstance(self.depth, int) and self.depth >= 0, "depth", "must be >= 0")
        need(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        need(self.input_norm in ("clip", "batch", "none"), "input_norm", "use clip, batch or none")
        for name in ("lambda_ce", "lambda_i", "lambda_c", "weight_decay", "grad_clip"):
            need(self.__dict__[name] >= 0, name, "must be >= 0")
        need(self.lambda_ce > 0, "lambda_ce", "must be > 0 (the classifier needs the CE term)")
        need(0.0 <= self.label_smoothing < 1.0, "label_smoothing", "must be in [0, 1)")
        need(self.lr_frontend >= 0, "lr_frontend", "must be >= 0")
        need(self.lr_classifier > 0, "lr_classifier", "must be > 0")
        need(isinstance(self.batch_size, int) and self.batch_size >= 2, "batch_size", "must be >= 2")
        need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "must be >= 1")
        need(self.scheduler in ("cosine", "constant"), "scheduler", "use cosine or constant")
        need(isinstance(self.eval_snrs, (list, tuple)) and all(
            isinstance(s, (int, float)) for s in self.eval_snrs), "eval_snrs", "must be a list of dB values")
        self.eval_snrs = [float(s) for s in self.eval_snrs]
        return self


def resolve_config(config: "TrainConfig | Mapping[str, Any] | str | os.PathLike | None" = None,
                   **overrides) -> TrainConfig:
    """A validated :class:`TrainConfig` from a config object, a dict, a JSON file or None
    (defaults), with keyword overrides applied on top."""
    if config is None:
        base = TrainConfig().to_dict()
    elif isinstance(config, TrainConfig):
        base = config.to_dict()
    elif isinstance(config, Mapping):
        base = TrainConfig().to_dict()
        base.update(config)
    elif isinstance(config, (str, os.PathLike)):
        base = TrainConfig.from_file(config).to_dict()
    else:
        raise ValueError(f"config must be a TrainConfig, a dict or a JSON path, got {type(config).__name__}")
    base.update(overrides)
    return TrainConfig.from_dict(base)


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_copy(x) for x in v]
    return v

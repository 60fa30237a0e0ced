"""Training configuration: one flat, JSON-serialisable dataclass.

Every field is a plain number, string, list or dict so that a configuration
round-trips through ``config.json``, a search trial can be described by a
dict of overrides, and every field is also a ``learnafe train`` flag
(``lr_frontend`` -> ``--lr-frontend``) whose help text is the field's one-line
documentation (``metadata["help"]``, :meth:`TrainConfig.help`).  :meth:`TrainConfig.validate` checks
ranges and raises a :class:`ValueError` naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from learnafe._jsonio import read_json
from learnafe._migrate import run_config
from learnafe.circuits.transconductance import SKY130_CORNERS

__all__ = ["TrainConfig", "MODES", "EVAL_SNRS", "DEFAULT_DATA", "resolve_config"]

MODES = ("codesign", "conventional")
#: Front-end kinds of `learnafe train`: the analog circuit bank and the classic banks of
#: :mod:`learnafe.frontends.classic` (its ``KINDS``).
FRONTEND_KINDS = ("analog", "gammatone", "butterworth", "constant_q")
#: Fixed evaluation SNRs in dB (plus "clean"), the paper's protocol.
EVAL_SNRS = (5.0, 10.0, 15.0, 20.0)
#: Where ``learnafe data synth --size small`` writes the embedded default data set.
DEFAULT_DATA = "data/synth-small"
#: Process corners ``train_corners`` may list (the shipped SKY130 gm/Id tables).
CORNER_NAMES = SKY130_CORNERS


def _opt(default: Any, help: str) -> Any:
    """A :class:`TrainConfig` field with its one-line documentation (``learnafe train``'s
    help text for the option); list and dict defaults are copied per instance."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: _copy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """All settings of one training run (see docs/training.md for the meaning of each)."""

    # --- data ---------------------------------------------------------------
    data: str = _opt(DEFAULT_DATA, "data set root (Speech Commands layout)")
    sample_rate: int = _opt(20000, "sample rate in Hz; audio is resampled to it")
    clip_seconds: float = _opt(1.0, "clip length in s; clips are padded or cropped to it")
    train_split: str = _opt("train", "name of the training split of `data`")
    val_split: str = _opt("validation", "name of the validation split of `data`")
    test_split: str = _opt("test", "name of the test split of `data`")
    limit_train: int = _opt(0, "use only the first N training clips (0: all)")
    limit_val: int = _opt(0, "use only the first N validation/test clips (0: all)")
    noise: str = _opt("", "noise folder for training mixing and the fixed-SNR evaluation sets "
                          "(\"\": the data set's _background_noise_)")
    # --- several sources (docs/training.md, "Training on several sources") --
    data_weight: float = _opt(1.0, "sampling weight of the training split of `data` (0: not used)")
    real: str = _opt("", "labelled real speech (12-class or Speech Commands layout), split by "
                         "speaker: one part trains, the other validates")
    real_weight: float = _opt(1.0, "sampling weight of the real training speakers (0: validate only)")
    real_val_fraction: float = _opt(0.5, "share of every class of `real` on the validation side")
    real_split_seed: int = _opt(0, "seed of the speaker split of `real`")
    sources: list = _opt([], "more training sources, each a folder with an optional sampling weight "
                             "and use (auto, train, all, speaker-train), or a JSON object "
                             "{\"path\", \"weight\", \"use\"}")
    epoch_clips: int = _opt(0, "clips per epoch drawn from the sources (0: their total)")
    # --- augmentation (training only) ---------------------------------------
    snr_low_db: float = _opt(5.0, "lowest SNR in dB of the noise mixed into training clips")
    snr_high_db: float = _opt(20.0, "highest SNR in dB of the noise mixed into training clips")
    p_noise: float = _opt(0.85, "fraction of training clips that get noise")
    gain_db: float = _opt(10.0, "random level change in dB, uniform in +-gain_db")
    time_shift_ms: float = _opt(100.0, "random shift in ms, uniform in +-time_shift_ms")
    speed: float = _opt(0.10, "speed/pitch perturbation: resample by U(1-s, 1+s)")
    time_masks: int = _opt(2, "SpecAugment-like time masks per feature map")
    time_mask_frames: int = _opt(10, "maximum width of a time mask in frames")
    freq_masks: int = _opt(1, "SpecAugment-like channel masks per feature map")
    freq_mask_channels: int = _opt(2, "maximum width of a channel mask in channels")
    voice_augment: dict = _opt({}, "voice/room augmentation of the training clips as a JSON object "
                                   "of learnafe.data.augment.VoiceAugmentConfig options, e.g. "
                                   "{\"enabled\": true} for the defaults ({}: off)")
    # --- front end ----------------------------------------------------------
    mode: str = _opt("codesign", "codesign (trainable bank) or conventional (frozen)")
    frontend_kind: str = _opt("analog", "front end: analog (the DSSF circuit bank) or a fixed classic "
                                        "bank: gammatone, butterworth or constant_q")
    filter_order: int = _opt(4, "second-order sections per channel of the butterworth and "
                                "constant_q banks (2-8)")
    n_channels: int = _opt(16, "number of band-pass channels of the bank")
    f_low: float = _opt(100.0, "centre in Hz of the lowest conventional channel")
    f_high: float = _opt(8000.0, "centre in Hz of the highest conventional channel")
    q: float = _opt(0.0, "constant Q of the conventional design (0: neighbours cross at their "
                         "-3 dB points, 3.41 for 16 x 100 Hz-8 kHz)")
    gm_model: str = _opt("sky130-tt", "transconductance model: shipped SKY130 table sky130-tt/-ss/-ff, "
                                      "weak_inversion, or a gm/Id JSON file")
    output_conductance: bool = _opt(True, "the devices' gds from the gm/Id table in design and "
                                          "training (false: ideal devices)")
    min_spacing: float = _opt(1.1, "each centre >= min_spacing x its lower neighbour (0: free bank)")
    train_corners: str = _opt("", "comma-separated process corners, one drawn per training batch "
                                  "(e.g. tt,ss,ff; \"\": off)")
    train_mismatch: str = _opt("", "sky130: SKY130 mismatch drawn per training batch (\"\": off)")
    frontend: dict = _opt({}, "extra AnalogFilterBank options as a JSON object (override the above)")
    # --- classifier ---------------------------------------------------------
    width: int = _opt(64, "channels of every DSCNN layer")
    depth: int = _opt(4, "number of depthwise-separable DSCNN blocks")
    dropout: float = _opt(0.1, "dropout probability of the classifier")
    input_norm: str = _opt("clip", "feature normalisation before the classifier: clip, batch or none")
    # --- loss L_BPF = lambda_ce CE + lambda_i P/P_ref + lambda_c A/A_ref -----
    lambda_ce: float = _opt(1.0, "weight of the cross-entropy term of L_BPF")
    lambda_i: float = _opt(0.05, "weight of the power term P/P_ref of L_BPF")
    lambda_c: float = _opt(0.05, "weight of the area term A/A_ref of L_BPF")
    label_smoothing: float = _opt(0.05, "label smoothing of the cross-entropy")
    # --- optimisation -------------------------------------------------------
    lr_frontend: float = _opt(0.01, "AdamW learning rate of the bank's parameters")
    lr_classifier: float = _opt(0.003, "AdamW learning rate of the classifier")
    weight_decay: float = _opt(0.01, "weight decay of the classifier (the bank's log-scale factors "
                                     "get none)")
    batch_size: int = _opt(64, "clips per optimiser step (over all processes)")
    epochs: int = _opt(12, "training epochs")
    max_steps: int = _opt(0, "stop after this many optimiser steps (0: no limit)")
    warmup_steps: int = _opt(100, "steps of linear learning-rate warm-up")
    scheduler: str = _opt("cosine", "learning-rate schedule after warm-up: cosine or constant")
    grad_clip: float = _opt(5.0, "max gradient norm (0: off)")
    early_stop: int = _opt(0, "stop after N epochs without validation improvement (0: off)")
    # --- teacher and distillation (docs/training.md, "A teacher") ----------
    # L = (1 - distill_weight) CE(labels) + distill_weight T^2 KL(teacher_T || student_T),
    # in place of the CE term of L_BPF (the hardware terms are unchanged).
    teacher: str = _opt("", "run directory of a trained teacher classifier (same classes, sample "
                            "rate, clip length and feature shape) whose soft targets the run "
                            "distils (\"\": no teacher)")
    distill_weight: float = _opt(0.0, "weight w of the distillation term: (1-w) CE + w T^2 "
                                      "KL(teacher || student), in [0, 1] (0: off)")
    distill_temperature: float = _opt(4.0, "temperature T of the teacher's and the student's "
                                           "softmax in the distillation term (> 0)")
    # --- evaluation ---------------------------------------------------------
    eval_snrs: list = _opt(list(EVAL_SNRS), "SNRs in dB of the fixed-SNR evaluation sets")
    eval_seed: int = _opt(20250700, "seed of the noise mixed into the fixed-SNR evaluation sets")
    # --- bookkeeping --------------------------------------------------------
    seed: int = _opt(0, "seed of initialisation, data order and augmentation")
    checkpoint_every: int = _opt(0, "also checkpoint every N steps (0: once per epoch)")
    threads: int = _opt(0, "torch/OpenMP threads per process (0: library default)")
    progress: bool = _opt(True, "show progress bars")

    # ------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def help(cls, name: str) -> str:
        """The one-line documentation of field ``name``."""
        return next(f for f in cls.fields() if f.name == name).metadata["help"]

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
        whole): an option the file lacks predates the file and takes the value it meant then
        (:func:`learnafe._migrate.run_config`), so an old run rebuilds exactly as it was trained."""
        d = read_json(path, "run config", "the run directory is damaged")
        if not isinstance(d, Mapping):
            raise ValueError(f"{path}: a run's config.json must hold a JSON object")
        return cls.from_dict(run_config(d))

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
        need(self.frontend_kind in FRONTEND_KINDS, "frontend_kind", f"use one of {FRONTEND_KINDS}")
        need(isinstance(self.filter_order, int) and not isinstance(self.filter_order, bool)
             and 2 <= self.filter_order <= 8, "filter_order", "must be an integer in 2..8")
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
        from learnafe.data.augment import VoiceAugmentConfig

        need(isinstance(self.voice_augment, dict), "voice_augment",
             "must be a JSON object of VoiceAugmentConfig options ({} for off)")
        try:
            VoiceAugmentConfig.from_dict(self.voice_augment)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"training option voice_augment={self.voice_augment!r} is invalid: {exc}") from None
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
        need(isinstance(self.teacher, str), "teacher", "give a teacher run directory (or \"\")")
        need(0.0 <= self.distill_weight <= 1.0, "distill_weight", "must be in [0, 1]")
        need(self.distill_weight == 0.0 or self.teacher != "", "distill_weight",
             "a weight > 0 needs a teacher run directory (--teacher DIR)")
        need(self.distill_temperature > 0, "distill_temperature", "must be > 0")
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

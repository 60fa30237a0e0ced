"""Training configuration: frozen sections of one JSON-serialisable :class:`TrainConfig`.

A configuration is a tree of frozen dataclass sections (``data``, ``augment``, ``bank``,
``corners``, ``noise``, ``mismatch``, ``classifier``, ``cost``, ``distill``, ``optimiser``,
``schedule``, ``evaluation``, ``output``); an option is named by its dotted path
(``optimiser.lr_frontend``).  Every field carries its one-line documentation
(``metadata["help"]``, :meth:`TrainConfig.help`), which is also the help text of its
``learnafe train`` flag.  Each section's ``__post_init__`` validates its own fields
and raises a :class:`ValueError` naming the dotted field and the fix; checks that
span two sections sit in :meth:`TrainConfig.__post_init__`.  The ``noise`` and ``mismatch``
sections have the fields of the bank's own types (:class:`~learnafe.circuits.variation.NoiseConfig`,
:class:`~learnafe.circuits.variation.MismatchConfig`), which check them.

A configuration round-trips through ``config.json`` (:meth:`TrainConfig.to_dict`,
:meth:`TrainConfig.from_dict`, nested by section).  Flat option names of earlier
files, flags and search overrides are read through :mod:`learnafe._migrate`.

Adding an option is one line in its section: ``name: type = _opt(default, "help")``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from learnafe._jsonio import read_json
from learnafe._migrate import dotted_options, flag_name, run_config
from learnafe.training.circuit_sections import CornerSection, MismatchSection, NoiseSection
from learnafe.training.section import Section as _Section
from learnafe.training.section import copy_value as _copy
from learnafe.training.section import option as _opt

__all__ = ["TrainConfig", "MODES", "EVAL_SNRS", "DEFAULT_DATA", "SECTIONS", "resolve_config",
           "DataSection", "AugmentSection", "BankSection", "CornerSection", "NoiseSection", "MismatchSection",
           "ClassifierSection", "CostSection", "OptimiserSection", "ScheduleSection",
           "EvaluationSection", "OutputSection"]

MODES = ("codesign", "conventional")
#: Front-end kinds of `learnafe train`: the analog circuit bank and the classic banks of
#: :mod:`learnafe.frontends.classic` (its ``KINDS``).
FRONTEND_KINDS = ("analog", "gammatone", "butterworth", "constant_q")
#: Fixed evaluation SNRs in dB (plus "clean"), the paper's protocol.
EVAL_SNRS = (5.0, 10.0, 15.0, 20.0)
#: Where ``learnafe data synth --size small`` writes the embedded default data set.
DEFAULT_DATA = "data/synth-small"


@dataclass(frozen=True)
class DataSection(_Section):
    """Where the clips come from and how they are cut."""

    name: ClassVar[str] = "data"
    root: str = _opt(DEFAULT_DATA, "data set root (Speech Commands layout)")
    sample_rate: int = _opt(20000, "sample rate in Hz; audio is resampled to it")
    clip_seconds: float = _opt(1.0, "clip length in s; clips are padded or cropped to it")
    train_split: str = _opt("train", "name of the training split of `data`")
    val_split: str = _opt("validation", "name of the validation split of `data`")
    test_split: str = _opt("test", "name of the test split of `data`")
    limit_train: int = _opt(0, "use only the first N training clips (0: all)")
    limit_val: int = _opt(0, "use only the first N validation/test clips (0: all)")
    noise: str = _opt("", "noise folder for training mixing and the fixed-SNR evaluation sets "
                          "(\"\": the data set's _background_noise_)")
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

    def check(self) -> None:
        self._need(isinstance(self.root, str) and self.root != "", "root", "give a data set folder")
        self._need(isinstance(self.sample_rate, int) and self.sample_rate >= 8000, "sample_rate",
                   "use at least 8000 Hz")
        self._need(0.05 <= self.clip_seconds <= 10.0, "clip_seconds", "use 0.05 to 10 s")
        self._non_negative_ints("limit_train", "limit_val", "epoch_clips", "real_split_seed")
        self._need(isinstance(self.noise, str), "noise", "give a folder of noise wavs (or \"\")")
        self._need(isinstance(self.real, str), "real", "give a folder of labelled real speech (or \"\")")
        for leaf in ("data_weight", "real_weight"):
            self._need(isinstance(getattr(self, leaf), float) and getattr(self, leaf) >= 0, leaf,
                       "must be a sampling weight >= 0")
        self._need(0.0 < self.real_val_fraction < 1.0, "real_val_fraction",
                   "must be in (0, 1): the share of every class held out as validation speakers")
        from learnafe.data.sources import normalise_sources  # here: `learnafe.data` loads torch

        try:
            self._set("sources", normalise_sources(self.sources))
        except ValueError as exc:
            raise ValueError(f"training option data.sources={self.sources!r} is invalid: {exc}") from None
        n_weighted = (self.data_weight > 0) + (bool(self.real) and self.real_weight > 0) + sum(
            s["weight"] > 0 for s in self.sources)
        self._need(n_weighted >= 1, "data_weight", "at least one training source needs a weight > 0")


@dataclass(frozen=True)
class AugmentSection(_Section):
    """Augmentation of the training clips and feature maps (training only)."""

    name: ClassVar[str] = "augment"
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
    mixup_alpha: float = _opt(0.0, "mixup of every training batch with a permutation of itself, "
                                   "lam ~ Beta(alpha, alpha) (0: off)")

    def check(self) -> None:
        self._need(self.snr_low_db <= self.snr_high_db, "snr_low_db", "must not exceed augment.snr_high_db")
        self._need(0.0 <= self.p_noise <= 1.0, "p_noise", "must be a probability in [0, 1]")
        self._need(self.gain_db >= 0, "gain_db", "must be >= 0 dB")
        self._need(self.time_shift_ms >= 0, "time_shift_ms", "must be >= 0")
        self._need(0.0 <= self.speed < 0.5, "speed", "must be in [0, 0.5)")
        self._need(self.mixup_alpha >= 0.0, "mixup_alpha", "must be >= 0 (0: off)")
        self._non_negative_ints("time_masks", "freq_masks", "time_mask_frames", "freq_mask_channels")
        from learnafe.data.augment import VoiceAugmentConfig

        self._need(isinstance(self.voice_augment, dict), "voice_augment",
                   "must be a JSON object of VoiceAugmentConfig options ({} for off)")
        try:
            VoiceAugmentConfig.from_dict(self.voice_augment)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"training option augment.voice_augment={self.voice_augment!r} is invalid: "
                             f"{exc}") from None


@dataclass(frozen=True)
class BankSection(_Section):
    """The front end: its kind, channels, band, Q, device model and spacing."""

    name: ClassVar[str] = "bank"
    mode: str = _opt("codesign", "codesign (trainable bank) or conventional (frozen)")
    kind: str = _opt("analog", "front end: analog (the DSSF circuit bank) or a fixed classic "
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
    options: dict = _opt({}, "extra AnalogFilterBank options as a JSON object (override the above; "
                             "noise and mismatch are sections of their own)")

    def check(self) -> None:
        self._need(self.mode in MODES, "mode", f"use one of {MODES}")
        self._need(self.kind in FRONTEND_KINDS, "kind", f"use one of {FRONTEND_KINDS}")
        self._need(isinstance(self.filter_order, int) and not isinstance(self.filter_order, bool)
                   and 2 <= self.filter_order <= 8, "filter_order", "must be an integer in 2..8")
        self._need(isinstance(self.n_channels, int) and self.n_channels >= 1, "n_channels", "must be >= 1")
        self._need(0 < self.f_low < self.f_high, "f_low", "need 0 < bank.f_low < bank.f_high")
        self._need(self.q >= 0, "q", "must be > 0 (or 0 for the -3 dB crossing Q)")
        self._need(isinstance(self.gm_model, str) and self.gm_model != "", "gm_model",
                   "use sky130-tt, sky130-ss, sky130-ff, weak_inversion or a gm/Id JSON file")
        self._need(isinstance(self.output_conductance, bool), "output_conductance", "must be true or false")
        self._need(isinstance(self.min_spacing, float)
                   and (self.min_spacing == 0 or 1.0 <= self.min_spacing <= 4.0), "min_spacing",
                   "use 0 (a free bank) or a ratio in [1, 4] (1.1: centres at least 10 % apart)")
        self._need(isinstance(self.options, dict), "options", "must be a JSON object of AnalogFilterBank options")
        for key in ("noise", "mismatch"):
            self._need(key not in self.options, "options",
                       f"{key!r} is the section {key} of the configuration: set {key}.<field> "
                       f"(flags --{key}-mode ...) instead of bank.options.{key}")


@dataclass(frozen=True)
class ClassifierSection(_Section):
    """The DSCNN classifier and its input normalisation."""

    name: ClassVar[str] = "classifier"
    width: int = _opt(64, "channels of every DSCNN layer")
    depth: int = _opt(4, "number of depthwise-separable DSCNN blocks")
    dropout: float = _opt(0.1, "dropout probability of the classifier")
    input_norm: str = _opt("clip", "feature normalisation before the classifier: clip, batch or none")

    def check(self) -> None:
        self._need(isinstance(self.width, int) and self.width >= 1, "width", "must be >= 1")
        self._need(isinstance(self.depth, int) and self.depth >= 0, "depth", "must be >= 0")
        self._need(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        self._need(self.input_norm in ("clip", "batch", "none"), "input_norm", "use clip, batch or none")


@dataclass(frozen=True)
class CostSection(_Section):
    """The loss L_BPF = lambda_ce CE + lambda_i P/P_ref + lambda_c A/A_ref."""

    name: ClassVar[str] = "cost"
    lambda_ce: float = _opt(1.0, "weight of the cross-entropy term of L_BPF")
    lambda_i: float = _opt(0.05, "weight of the power term P/P_ref of L_BPF")
    lambda_c: float = _opt(0.05, "weight of the area term A/A_ref of L_BPF")
    label_smoothing: float = _opt(0.05, "label smoothing of the cross-entropy")
    unknown_weight: float = _opt(1.0, "weight of the unknown class in the cross-entropy: each "
                                      "unknown clip counts this many times in the batch's weighted "
                                      "mean (1: unweighted)")

    def check(self) -> None:
        for leaf in ("lambda_i", "lambda_c"):
            self._need(getattr(self, leaf) >= 0, leaf, "must be >= 0")
        self._need(self.lambda_ce > 0, "lambda_ce", "must be > 0 (the classifier needs the CE term)")
        self._need(0.0 <= self.label_smoothing < 1.0, "label_smoothing", "must be in [0, 1)")
        self._need(isinstance(self.unknown_weight, (int, float)) and self.unknown_weight > 0,
                   "unknown_weight", "must be > 0 (1: the unweighted cross-entropy)")


@dataclass(frozen=True)
class DistillSection(_Section):
    """A teacher's soft targets (docs/training.md, "A teacher"): L = (1 - weight) CE(labels) +
    weight T^2 KL(teacher_T || student_T) in place of the CE term of L_BPF (the hardware
    terms are unchanged)."""

    name: ClassVar[str] = "distill"
    teacher: str = _opt("", "run directory of a trained teacher classifier (same classes, sample "
                            "rate, clip length and feature shape) whose soft targets the run "
                            "distils (\"\": no teacher)")
    distill_weight: float = _opt(0.0, "weight w of the distillation term: (1-w) CE + w T^2 "
                                      "KL(teacher || student), in [0, 1] (0: off)")
    distill_temperature: float = _opt(4.0, "temperature T of the teacher's and the student's "
                                           "softmax in the distillation term (> 0)")

    def check(self) -> None:
        self._need(isinstance(self.teacher, str), "teacher", "give a teacher run directory (or \"\")")
        self._need(0.0 <= self.distill_weight <= 1.0, "distill_weight", "must be in [0, 1]")
        self._need(self.distill_weight == 0.0 or self.teacher != "", "distill_weight",
                   "a weight > 0 needs a teacher run directory (--teacher DIR)")
        self._need(self.distill_temperature > 0, "distill_temperature", "must be > 0")


@dataclass(frozen=True)
class OptimiserSection(_Section):
    """AdamW over the bank and the classifier."""

    name: ClassVar[str] = "optimiser"
    lr_frontend: float = _opt(0.01, "AdamW learning rate of the bank's parameters")
    lr_classifier: float = _opt(0.003, "AdamW learning rate of the classifier")
    weight_decay: float = _opt(0.01, "weight decay of the classifier (the bank's log-scale factors "
                                     "get none)")
    batch_size: int = _opt(64, "clips per optimiser step (over all processes)")
    grad_clip: float = _opt(5.0, "max gradient norm (0: off)")
    ema_decay: float = _opt(0.0, "decay of an exponential moving average of the weights, which is "
                                 "validated, kept and deployed instead of the raw weights (0: off; "
                                 "e.g. 0.99 averages over about 100 steps)")

    def check(self) -> None:
        for leaf in ("weight_decay", "grad_clip", "lr_frontend"):
            self._need(getattr(self, leaf) >= 0, leaf, "must be >= 0")
        self._need(0.0 <= self.ema_decay < 1.0, "ema_decay", "must be in [0, 1) (0: off)")
        self._need(self.lr_classifier > 0, "lr_classifier", "must be > 0")
        self._need(isinstance(self.batch_size, int) and self.batch_size >= 2, "batch_size", "must be >= 2")


@dataclass(frozen=True)
class ScheduleSection(_Section):
    """How long the run trains and how the learning rate moves."""

    name: ClassVar[str] = "schedule"
    epochs: int = _opt(12, "training epochs")
    max_steps: int = _opt(0, "stop after this many optimiser steps (0: no limit)")
    warmup_steps: int = _opt(100, "steps of linear learning-rate warm-up")
    scheduler: str = _opt("cosine", "learning-rate schedule after warm-up: cosine or constant")
    early_stop: int = _opt(0, "stop after N epochs without validation improvement (0: off)")

    def check(self) -> None:
        self._need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "must be >= 1")
        self._non_negative_ints("max_steps", "warmup_steps", "early_stop")
        self._need(self.scheduler in ("cosine", "constant"), "scheduler", "use cosine or constant")


@dataclass(frozen=True)
class EvaluationSection(_Section):
    """The fixed-SNR evaluation sets."""

    name: ClassVar[str] = "evaluation"
    eval_snrs: list = _opt(list(EVAL_SNRS), "SNRs in dB of the fixed-SNR evaluation sets")
    eval_seed: int = _opt(20250700, "seed of the noise mixed into the fixed-SNR evaluation sets")

    def check(self) -> None:
        self._need(isinstance(self.eval_snrs, (list, tuple)) and all(
            isinstance(s, (int, float)) for s in self.eval_snrs), "eval_snrs", "must be a list of dB values")
        self._set("eval_snrs", [float(s) for s in self.eval_snrs])


@dataclass(frozen=True)
class OutputSection(_Section):
    """Seed, checkpointing, threads and progress of the run."""

    name: ClassVar[str] = "output"
    seed: int = _opt(0, "seed of initialisation, data order and augmentation")
    checkpoint_every: int = _opt(0, "also checkpoint every N steps (0: once per epoch)")
    threads: int = _opt(0, "torch/OpenMP threads per process (0: library default)")
    progress: bool = _opt(True, "show progress bars")

    def check(self) -> None:
        self._non_negative_ints("checkpoint_every", "threads")


@dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run (see docs/training.md for the meaning of each)."""

    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    bank: BankSection = field(default_factory=BankSection)
    corners: CornerSection = field(default_factory=CornerSection)
    noise: NoiseSection = field(default_factory=NoiseSection)
    mismatch: MismatchSection = field(default_factory=MismatchSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    cost: CostSection = field(default_factory=CostSection)
    distill: DistillSection = field(default_factory=DistillSection)
    optimiser: OptimiserSection = field(default_factory=OptimiserSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    output: OutputSection = field(default_factory=OutputSection)

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"training option {name} must be a {cls.__name__}, "
                                 f"got {type(getattr(self, name)).__name__}")
        nyquist = self.data.sample_rate / 2
        if not self.bank.f_high < nyquist:
            raise ValueError(f"training option bank.f_high={self.bank.f_high!r} is invalid: need "
                             f"bank.f_high < data.sample_rate/2 ({nyquist:g} Hz)")

    # ------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[tuple[str, dataclasses.Field]]:
        """Every option as (dotted name, field), section by section."""
        return [(f"{name}.{f.name}", f) for name, sec in SECTIONS.items() for f in dataclasses.fields(sec)]

    @classmethod
    def defaults(cls) -> dict:
        """{dotted name: default} read from the fields (no section is built, so nothing the
        validation needs, such as torch, is imported)."""
        return {name: _copy(f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for name, f in cls.fields()}

    @classmethod
    def help(cls, name: str) -> str:
        """The one-line documentation of option ``name`` (dotted or a flag's flat name)."""
        dotted = next(iter(dotted_options({name: None})))
        return dict(cls.fields())[dotted].metadata["help"]

    @classmethod
    def flag(cls, dotted: str) -> str:
        """The ``learnafe train`` flag name (without ``--``, underscores) of option ``dotted``."""
        return flag_name(dotted)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping: nested by section, dotted names or the flat names of earlier
        files (:func:`learnafe._migrate.dotted_options`); unknown keys are an error that lists
        the valid ones."""
        if not isinstance(d, Mapping):
            raise ValueError(f"TrainConfig.from_dict: expected a mapping, got {type(d).__name__}")
        dotted = dotted_options(d)
        names = {n for n, _ in cls.fields()}
        unknown = sorted(set(dotted) - names)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid options: {sorted(names)}")
        groups: dict[str, dict] = {name: {} for name in SECTIONS}
        for key, v in dotted.items():
            section, leaf = key.split(".", 1)
            groups[section][leaf] = _copy(v)
        return cls(**{name: SECTIONS[name](**kw) for name, kw in groups.items()})

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
        """The configuration nested by section (JSON-compatible)."""
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    def to_dotted(self) -> dict:
        """The configuration as {dotted name: value}."""
        return {f"{name}.{k}": v for name in SECTIONS for k, v in getattr(self, name).to_dict().items()}

    def replace(self, **overrides) -> "TrainConfig":
        """A copy with options replaced: dotted names (``**{"optimiser.lr_frontend": 0.02}``),
        flat names of earlier files, or whole sections (``bank=BankSection(...)``)."""
        d = self.to_dotted()
        d.update(dotted_options({key: v.to_dict() if isinstance(v, _Section) else v
                                 for key, v in overrides.items()}))
        return TrainConfig.from_dict(d)


#: The section classes of :class:`TrainConfig` by name, in the order of its fields (and of ``to_dict``).
SECTIONS: dict[str, type[_Section]] = {f.name: f.default_factory for f in dataclasses.fields(TrainConfig)}


def resolve_config(config: "TrainConfig | Mapping[str, Any] | str | os.PathLike | None" = None,
                   **overrides) -> TrainConfig:
    """A validated :class:`TrainConfig` from a config object, a dict, a JSON file or None
    (defaults), with keyword overrides (dotted or flat names) applied on top."""
    if config is None:
        base = TrainConfig()
    elif isinstance(config, TrainConfig):
        base = config
    elif isinstance(config, Mapping):
        base = TrainConfig().replace(**dotted_options(config))
    elif isinstance(config, (str, os.PathLike)):
        base = TrainConfig.from_file(config)
    else:
        raise ValueError(f"config must be a TrainConfig, a dict or a JSON path, got {type(config).__name__}")
    return base.replace(**overrides)

"""Keyword-spotting data: the Speech Commands loader, noise mixing, the audio
cache, training sets from several sources with speaker-disjoint splits, and
synthesis of the embedded default data set (``learnafe data synth``).

See ``docs/data.md`` for the layouts, the SNR definition and measured speeds.
"""

from .audio import AudioError, fix_length, load_audio, read_wav, resample, write_wav
from .cache import AudioCache
from .classes import CLASSES, KEYWORDS, SILENCE, SILENCE_LABEL, UNKNOWN, UNKNOWN_LABEL, UNKNOWN_WORDS, label_of
from .dataset import (
                      EVAL_SNRS_DB,
                      SPLITS,
                      BadDataWarning,
                      ClipOptions,
                      KeywordDataset,
                      LoadOptions,
                      detect_layout,
                      gsc_split_of,
                      snr_name,
)
from .noise import BackgroundNoise, active_mask, mix_at_snr, snr_db
from .sources import (
                      ClipSubset,
                      MixedDataset,
                      find_shared,
                      group_of,
                      open_source,
                      speaker_halves,
                      speaker_of,
                      speaker_split,
)

__all__ = [
    "CLASSES", "KEYWORDS", "UNKNOWN", "SILENCE", "UNKNOWN_LABEL", "SILENCE_LABEL", "UNKNOWN_WORDS",
    "label_of", "KeywordDataset", "ClipOptions", "LoadOptions", "BadDataWarning", "EVAL_SNRS_DB",
    "SPLITS", "detect_layout",
    "gsc_split_of", "snr_name", "BackgroundNoise", "active_mask", "mix_at_snr", "snr_db",
    "AudioCache", "AudioError", "read_wav", "write_wav", "resample", "fix_length", "load_audio",
    "ClipSubset", "MixedDataset", "open_source", "speaker_of", "group_of", "speaker_split",
    "speaker_halves", "find_shared",
]

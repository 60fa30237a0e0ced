"""Offline synthesis of the embedded default keyword data set (``learnafe data synth``)."""

from .builder import (
                      ENGINE_WEIGHTS,
                      EXTRA_UNKNOWN_WORDS,
                      RATE,
                      SIZES,
                      SynthSize,
                      assign_families,
                      plan_clips,
                      render_clip,
                      synthesize,
)
from .engines import ENGINES, Voice, available_engines, get_engine
from .noises import NOISE_TYPES, make_noise

__all__ = ["synthesize", "plan_clips", "render_clip", "assign_families", "SIZES", "SynthSize",
           "ENGINE_WEIGHTS", "EXTRA_UNKNOWN_WORDS", "RATE", "ENGINES", "Voice",
           "available_engines", "get_engine", "NOISE_TYPES", "make_noise"]

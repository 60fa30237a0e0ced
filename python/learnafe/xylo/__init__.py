"""XyloAudio 3 (SYNS65302) digital filter bank: bit-exact fixed-point filtering,
coefficient design from (centre, Q), register export, spike features and the
path from a co-designed analog bank to a deployable chip configuration."""

from learnafe.xylo.bank import DEFAULT_TABLE, XyloA3FilterBank, quantize_audio, resample_to_chip
from learnafe.xylo.design import (
                                  DEFAULT_CENTRES_HZ,
                                  DEFAULT_Q,
                                  XYLO_SAMPLE_RATE,
                                  XyloChannel,
                                  design_bank,
                                  design_channel,
                                  peak_and_q,
                                  read_off,
)
from learnafe.xylo.kernel import XyloOverflowError
from learnafe.xylo.registers import bank_from_registers, load_design, register_config, save_design
from learnafe.xylo.report import report_section

__all__ = [
    "DEFAULT_TABLE", "XyloA3FilterBank", "XyloOverflowError", "quantize_audio", "resample_to_chip",
    "DEFAULT_CENTRES_HZ", "DEFAULT_Q", "XYLO_SAMPLE_RATE", "XyloChannel", "design_bank",
    "design_channel", "peak_and_q", "read_off", "bank_from_registers", "load_design",
    "register_config", "save_design", "report_section",
]

"""Register values of the XyloAudio 3 filter bank and design files.

:func:`register_config` packs a bank into the chip's band-pass registers,
identical to rockpool's ``ChipButterworth.register_config_XA3()``:

- ``bpf_bb_reg0/1``, ``bpf_bwf_reg0/1``, ``bpf_baf_reg0/1``: eight 4-bit fields
  per register (channel ``n`` at bits ``4n .. 4n+3`` of register ``n // 8``);
- ``bpf_a1_reg0..7``, ``bpf_a2_reg0..7``: two 16-bit two's-complement taps per
  register (channel ``2k`` in the low half, ``2k+1`` in the high half).

Missing channels (a bank of fewer than 16) are zero.  Design files are JSON
or TOML and hold both the table and the registers.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from learnafe._jsonio import write_json
from learnafe.xylo.bank import XyloA3FilterBank
from learnafe.xylo.design import NUM_FILTERS, XyloChannel, quantize_channel

FIELD_BITS = 4
TAP_BITS = 16


def _pack(values, width: int, per_reg: int, prefix: str, regs: int) -> dict[str, int]:
    vals = list(values) + [0] * (per_reg * regs - len(values))
    out = {}
    for r in range(regs):
        word = 0
        for k, v in enumerate(vals[r * per_reg:(r + 1) * per_reg]):
            word |= (int(v) & ((1 << width) - 1)) << (width * k)
        out[f"{prefix}{r}"] = word
    return out


def _unpack(regs: dict, prefix: str, count: int, width: int, per_reg: int, signed: bool
            ) -> list[int]:
    out = []
    for n in range(count):
        name = f"{prefix}{n // per_reg}"
        if name not in regs:
            raise ValueError(f"register {name} is missing")
        v = (int(regs[name]) >> (width * (n % per_reg))) & ((1 << width) - 1)
        if signed and v >= 1 << (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def register_config(bank: XyloA3FilterBank) -> dict[str, int]:
    """The register dictionary of ``bank`` (plain ints, keys as rockpool's)."""
    if len(bank) > NUM_FILTERS:
        raise ValueError(f"the bank has {len(bank)} channels; the chip has {NUM_FILTERS}")
    regs: dict[str, int] = {}
    regs.update(_pack(bank.field("B_b"), FIELD_BITS, 8, "bpf_bb_reg", 2))
    regs.update(_pack(bank.field("B_wf"), FIELD_BITS, 8, "bpf_bwf_reg", 2))
    regs.update(_pack(bank.field("B_af"), FIELD_BITS, 8, "bpf_baf_reg", 2))
    regs.update(_pack(bank.field("a1"), TAP_BITS, 2, "bpf_a1_reg", 8))
    regs.update(_pack(bank.field("a2"), TAP_BITS, 2, "bpf_a2_reg", 8))
    return regs


def bank_from_registers(regs: dict, num_channels: int = NUM_FILTERS,
                        B_worst_case=None, scale_out=None) -> XyloA3FilterBank:
    """Rebuild a bank from registers.  The registers do not hold ``B_worst_case``
    nor ``scale_out``: they are recomputed from the taps by the designer unless
    given (one value or one per channel)."""
    bb = _unpack(regs, "bpf_bb_reg", num_channels, FIELD_BITS, 8, False)
    bwf = _unpack(regs, "bpf_bwf_reg", num_channels, FIELD_BITS, 8, False)
    baf = _unpack(regs, "bpf_baf_reg", num_channels, FIELD_BITS, 8, False)
    a1 = _unpack(regs, "bpf_a1_reg", num_channels, TAP_BITS, 2, True)
    a2 = _unpack(regs, "bpf_a2_reg", num_channels, TAP_BITS, 2, True)
    chans = []
    for n in range(num_channels):
        frac = bb[n] + baf[n]
        fa1, fa2 = a1[n] / 2.0 ** frac, a2[n] / 2.0 ** frac
        derived = quantize_channel((1.0 - fa2) / 2.0, fa1, fa2, B_wf=bwf[n])
        wc = derived.B_worst_case if B_worst_case is None else (
            B_worst_case if isinstance(B_worst_case, int) else B_worst_case[n])
        so = derived.scale_out if scale_out is None else (
            scale_out if isinstance(scale_out, float) else scale_out[n])
        chans.append(XyloChannel(B_worst_case=wc, B_b=bb[n], B_af=baf[n], a1=a1[n], a2=a2[n],
                                 scale_out=so, B_wf=bwf[n]))
    return XyloA3FilterBank(chans)


def design_document(bank: XyloA3FilterBank, **meta) -> dict:
    """The design file content: table, realised centres/Q, registers, metadata."""
    doc = bank.to_dict()
    doc["registers"] = register_config(bank)
    if meta:
        doc["meta"] = meta
    return doc


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int,)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def to_toml(doc: dict) -> str:
    """Serialise a design document (flat values, one table of registers, an
    array of channel tables) as TOML."""
    lines = []
    tables = {}
    arrays = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            tables[k] = v
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            arrays[k] = v
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    for name, rows in arrays.items():
        for row in rows:
            lines.append(f"\n[[{name}]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in row.items())
    return "\n".join(lines) + "\n"


def save_design(bank: XyloA3FilterBank, path, **meta) -> Path:
    """Write the design file; the format follows the suffix (.json or .toml)."""
    path = Path(path)
    doc = design_document(bank, **meta)
    if path.suffix == ".json":
        write_json(path, doc)
    elif path.suffix == ".toml":
        path.write_text(to_toml(doc))
    else:
        raise ValueError(f"design file {path} must end in .json or .toml")
    return path


def load_design(path) -> XyloA3FilterBank:
    """Read a design file written by :func:`save_design` (JSON or TOML)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no design file at {path}")
    if path.suffix == ".toml":
        doc = tomllib.loads(path.read_text())
    else:
        doc = json.loads(path.read_text())
    bank = XyloA3FilterBank.from_dict(doc)
    regs = doc.get("registers")
    if regs is not None and register_config(bank) != {k: int(v) for k, v in regs.items()}:
        raise ValueError(f"{path}: the registers disagree with the channel table; the file "
                         "was edited by hand -- regenerate it with `learnafe xylo design`")
    return bank


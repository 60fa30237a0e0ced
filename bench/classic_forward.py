"""Forward time of the classic banks against the analog bank, in one process.

``python bench/classic_forward.py`` prints a markdown table: the best of 5 forward passes
(no gradient, 1 thread) of each bank on B = 32 clips of 1 s at 20 kHz, 16 channels from
100 Hz to 8 kHz, and its ratio to the conventional analog bank measured in the same run.
"""

import time

import torch

from learnafe.frontends import AnalogFilterBank
from learnafe.frontends.classic import ClassicFilterBank

REPEATS = 5


def main() -> None:
    torch.set_num_threads(1)
    x = torch.randn(32, 20000, generator=torch.Generator().manual_seed(0))
    banks = {
        "analog (conventional, 1 section)": AnalogFilterBank.conventional(n_channels=16, f_lo=100.0,
                                                                          f_hi=8000.0),
        "gammatone (4 sections)": ClassicFilterBank("gammatone", 16, 100.0, 8000.0),
        "butterworth, order 4": ClassicFilterBank("butterworth", 16, 100.0, 8000.0, order=4),
        "constant_q, order 4": ClassicFilterBank("constant_q", 16, 100.0, 8000.0, order=4),
    }
    best = {}
    for _ in range(REPEATS):  # interleaved, so that a change of machine load hits every bank
        for name, bank in banks.items():
            bank.eval()
            with torch.no_grad():
                t0 = time.perf_counter()
                bank(x)
                dt = time.perf_counter() - t0
            best[name] = min(best.get(name, float("inf")), dt)
    ref = best["analog (conventional, 1 section)"]
    print("| bank | forward | vs analog |\n| --- | --- | --- |")
    for name, dt in best.items():
        print(f"| {name} | {dt * 1e3:.1f} ms | {dt / ref:.2f} |")


if __name__ == "__main__":
    main()

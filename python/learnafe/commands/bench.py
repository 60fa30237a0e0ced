"""``learnafe bench``: run the benchmark sections of :mod:`learnafe.benchmarks`.

A section may also define ``plot(result, path)``; ``--plot-dir`` then writes its PNG.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from learnafe._jsonio import write_json

log = logging.getLogger("learnafe.bench")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="measure the kernels against scipy / PyTorch baselines",
        description="Run the benchmark sections (one module per section in learnafe.benchmarks) "
                    "and print their tables; every ratio in a section is measured in the same run. "
                    "Results can be written as JSON.")
    p.add_argument("--json", metavar="PATH", default=None, help="write all results to this JSON file")
    p.add_argument("--only", metavar="SECTION", nargs="+", default=None,
                   help="run only these sections (default: all; see --list)")
    p.add_argument("--plot-dir", metavar="DIR", default=None,
                   help="write one PNG per section that can plot itself (DIR/<section>.png)")
    p.add_argument("--list", action="store_true", help="list the sections and exit")
    p.add_argument("--quick", action="store_true", help="small sizes and fewer repeats (smoke test)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the kernels and torch (default: torch.get_num_threads())")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--isa", metavar="PATH", default=None,
                   help="run the sections on this kernel ISA path (generic, avx2, avx512) in a "
                        "subprocess with LEARNAFE_ISA set, or on every path with 'all', and compare them "
                        "in one table (Markdown + JSON next to --json, PNG in --plot-dir)")
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    from learnafe import benchmarks
    from learnafe.benchmarks import _environment, _isa

    names = benchmarks.section_names()
    if args.list:
        for name in names:
            print(f"{name:12s} {benchmarks.load_section(name).TITLE}")
        return 0
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    selected = args.only or names
    sections = {name: benchmarks.load_section(name) for name in selected}  # validates names
    if args.isa is not None:
        return _isa.compare(args, _isa.paths_of(args.isa), list(sections))
    results = {}
    for name, module in sections.items():
        log.info("section %s: %s", name, module.TITLE)
        load_before = _environment.load_average()
        t0 = time.perf_counter()
        result = module.run(args)
        result["wall_s"] = time.perf_counter() - t0
        environment = _environment.run_environment(args.threads)
        environment["load_average_before"] = load_before
        environment["load_average_after"] = environment.pop("load_average")
        result["environment"] = environment
        results[name] = result
        print(f"\n== {name}: {module.TITLE} ==")
        print(module.format(result))
        if args.plot_dir and hasattr(module, "plot"):
            png = Path(args.plot_dir) / f"{name}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            module.plot(result, png)
            log.info("wrote %s", png)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, results, newline=False)
        log.info("wrote %s", path)
    return 0

"""``learnafe data``: synthesise the embedded keyword data set, inspect and cache data sets."""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from pathlib import Path

from learnafe._jsonio import dumps, write_json

log = logging.getLogger("learnafe.data")


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="keyword data sets: synthesise, inspect, cache",
                              description="Keyword-spotting data sets (Speech Commands v2 layout).")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    s = sub.add_parser("synth", help="generate the embedded synthetic keyword data set",
                       description="Generate keyword, unknown-word and background-noise clips "
                       "with offline speech synthesis (espeak-ng, piper, flite, festival) in the "
                       "Speech Commands v2 layout. Resumable: re-running the same command "
                       "continues an interrupted run.")
    s.add_argument("--out", required=True, help="output folder (created)")
    s.add_argument("--size", default="small", choices=["small", "default"],
                   help="small: ~200 clips per keyword (tests, quick demo); default: ~1500")
    s.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel processes (default: all cores)")
    s.add_argument("--engines", default=None,
                   help="comma-separated subset of espeak,piper,flite,festival "
                   "(default: every available one)")
    s.add_argument("--json", default=None, help="also write the summary JSON here")
    s.set_defaults(func=_synth)

    u = sub.add_parser("unknowns", help="synthesise unknown words: keyword near-misses and a word list",
                       description="Synthesise non-keyword words for the unknown class (near-misses "
                       "of the keywords such as yet/yes, town/down, of/off, and a list of common "
                       "words; homophones of a keyword are never made) with the voices of `data "
                       "synth`, one folder per word. Train on it with --sources DIR:WEIGHT:all. "
                       "Resumable.")
    u.add_argument("--out", required=True, help="output folder (created)")
    u.add_argument("--kinds", default="near-miss,words",
                   help="comma-separated subset of near-miss,words (default both)")
    u.add_argument("--per-word", type=int, default=8, help="clips per word (default 8)")
    u.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    u.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel processes (default: all cores)")
    u.add_argument("--engines", default=None,
                   help="comma-separated subset of espeak,piper,flite,festival "
                   "(default: every available one)")
    u.add_argument("--json", default=None, help="also write the summary JSON here")
    u.set_defaults(func=_unknowns)

    i = sub.add_parser("info", help="class counts per split of a data set folder",
                       description="Read a data set folder (either layout) and print the class "
                       "counts of every split as JSON; bad files are reported.")
    _dataset_args(i)
    i.set_defaults(func=_info)

    c = sub.add_parser("cache", help="decode and cache a data set's audio, report clips/s",
                       description="Build the memory-mapped audio cache of every split (what "
                       "KeywordDataset(cache_dir=...) uses) and measure cold vs cached loading.")
    _dataset_args(c)
    c.add_argument("--cache-dir", required=True, help="cache folder")
    c.add_argument("--workers", type=int, default=1, help="processes for decoding")
    c.add_argument("--cold-clips", type=int, default=1000,
                   help="clips per split read without the cache to measure cold speed")
    c.set_defaults(func=_cache)

    g = sub.add_parser("plot", help="PNG overview: example spectrograms, noise spectra, counts",
                       description="Plot spectrograms of one word by every engine, the power "
                       "spectra of the background noises and the class counts per split.")
    g.add_argument("root", help="data set folder")
    g.add_argument("--out", required=True, help="PNG file to write")
    g.add_argument("--word", default="yes", help="word whose examples are shown [yes]")
    g.set_defaults(func=_plot)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _dataset_args(parser) -> None:
    parser.add_argument("root", help="data set folder (Speech Commands v2 or 12-class layout)")
    parser.add_argument("--sample-rate", type=int, default=20000, help="sample rate in Hz the clips are resampled to [20000]")
    parser.add_argument("--json", default=None, help="also write the result JSON here")


def _write_json(result: dict, path: str | None) -> None:
    print(dumps(result, indent=1, newline=False))
    if path:
        write_json(path, result, indent=1)


def _synth(args: argparse.Namespace) -> int:
    from learnafe.data.synth import synthesize

    engines = None if args.engines is None else [e.strip() for e in args.engines.split(",") if e.strip()]
    summary = synthesize(args.out, size=args.size, seed=args.seed, workers=args.workers,
                         engines=engines, progress=True)
    log.info("%d written, %d kept, %d failed in %.1f s", summary["written"], summary["kept"],
             summary["failed"], summary["seconds"])
    _write_json(summary, args.json)
    return 0


def _unknowns(args: argparse.Namespace) -> int:
    from learnafe.data.synth.unknowns import synthesize_unknowns

    engines = None if args.engines is None else [e.strip() for e in args.engines.split(",") if e.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    summary = synthesize_unknowns(args.out, kinds=kinds, per_word=args.per_word, seed=args.seed,
                                  workers=args.workers, engines=engines, progress=True)
    log.info("%d words: %d written, %d kept, %d failed in %.1f s", summary["words"], summary["written"],
             summary["kept"], summary["failed"], summary["seconds"])
    _write_json(summary, args.json)
    return 0


def _splits_for(root: str) -> list[str]:
    from learnafe.data import detect_layout

    root_p = Path(root)
    if detect_layout(root_p) == "test12" and not (root_p / "validation_list.txt").exists() \
            and not (root_p / "testing_list.txt").exists():
        return ["test"]
    return ["train", "validation", "test"]


def _info(args: argparse.Namespace) -> int:

    from learnafe.data import ClipOptions, KeywordDataset, LoadOptions, detect_layout

    result = {"root": str(args.root), "layout": detect_layout(args.root), "splits": {}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for split in _splits_for(args.root):
            ds = KeywordDataset(args.root, split, ClipOptions(sample_rate=args.sample_rate), LoadOptions(progress=False))
            result["splits"][split] = {"clips": len(ds), "classes": ds.class_counts()}
    result["warnings"] = [str(w.message) for w in caught]
    for w in caught:
        log.warning("%s", w.message)
    _write_json(result, args.json)
    return 0


def _cache(args: argparse.Namespace) -> int:

    from learnafe.data import ClipOptions, KeywordDataset, LoadOptions

    result = {"root": str(args.root), "cache_dir": str(args.cache_dir),
              "sample_rate": args.sample_rate, "splits": {}}
    for split in _splits_for(args.root):
        plain = KeywordDataset(args.root, split, ClipOptions(sample_rate=args.sample_rate), LoadOptions(progress=False))
        n_cold = min(len(plain), args.cold_clips)
        t0, c0 = time.perf_counter(), time.process_time()
        for k in range(n_cold):
            plain[k]
        cold = n_cold / (time.perf_counter() - t0)
        cold_cpu = n_cold / max(time.process_time() - c0, 1e-9)
        t0 = time.perf_counter()
        ds = KeywordDataset(args.root, split, ClipOptions(sample_rate=args.sample_rate),
                            LoadOptions(cache_dir=args.cache_dir, workers=args.workers, progress=True))
        build = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        for k in range(len(ds)):
            ds[k]
        cached = len(ds) / (time.perf_counter() - t0)
        cached_cpu = len(ds) / max(time.process_time() - c0, 1e-9)
        log.info("%s: %d clips, %.0f clips/s decoding wav, cache ready in %.1f s, "
                 "%.0f clips/s cached", split, len(ds), cold, build, cached)
        # Wall-clock rates depend on the machine's load; per-CPU-second rates much less.
        result["splits"][split] = {"clips": len(ds), "cold_clips_per_s": round(cold, 1),
                                   "cold_clips_per_cpu_s": round(cold_cpu, 1),
                                   "cache_seconds": round(build, 2),
                                   "cached_clips_per_s": round(cached, 1),
                                   "cached_clips_per_cpu_s": round(cached_cpu, 1)}
    _write_json(result, args.json)
    return 0


def _plot(args: argparse.Namespace) -> int:

    from learnafe.data.plots import plot_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bad files were reported by `data info`
        out = plot_dataset(args.root, args.out, word=args.word)
    log.info("wrote %s", out)
    return 0

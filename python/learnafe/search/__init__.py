"""Design-space search with Nevergrad: the accuracy-power-area Pareto front.

A search config (TOML or JSON, :mod:`learnafe.search.space`) defines the
parameters and the trial function; :func:`run_search` runs trials in parallel
(local processes or a Dask cluster, :mod:`learnafe.search.executor`), appends
each finished trial to a journal (:mod:`learnafe.search.journal`) so that the
search resumes after an interruption, and writes the Pareto set
(:mod:`learnafe.search.pareto`), tables, a plot and a summary.

Heavy imports (nevergrad, torch, dask) happen only when a search runs, so
worker processes start quickly.
"""

from learnafe.search.journal import Journal
from learnafe.search.pareto import dominates, non_dominated, pareto_records
from learnafe.search.space import OBJECTIVES, Parameter, SearchConfig, SearchSpace, load_config

__all__ = ["OBJECTIVES", "Journal", "Parameter", "SearchConfig", "SearchResult", "SearchSpace", "dominates",
           "load_config", "non_dominated", "pareto_records", "report_section", "run_search"]


def __getattr__(name):
    if name in ("run_search", "SearchResult"):
        from learnafe.search import runner

        return getattr(runner, name)
    if name == "report_section":
        from learnafe.search.report import report_section

        return report_section
    raise AttributeError(f"module 'learnafe.search' has no attribute {name!r}")

"""``learnafe report``: the Markdown report with PNG plots of one or more runs.

This package sits above :mod:`learnafe.spice`, :mod:`learnafe.xylo` and
:mod:`learnafe.search` in the layer order and registers their report sections
(:mod:`learnafe.reporting.sections`) when it is imported::

    from learnafe.reporting import write_report
    write_report(["runs/demo/conventional", "runs/demo/codesign"], "runs/demo/report.md")
"""

from learnafe.reporting.report import EVAL_DIR, load_summary, write_report
from learnafe.reporting.sections import RUN_SECTIONS, SEARCH_SECTIONS, register_section
from learnafe.search.report import report_section as _search_section
from learnafe.spice.report import report_section as _spice_section
from learnafe.xylo.report import report_section as _xylo_section

register_section("spice", _spice_section)
register_section("xylo", _xylo_section)
register_section("search", _search_section, kind="search")

__all__ = ["write_report", "load_summary", "EVAL_DIR", "register_section", "RUN_SECTIONS",
           "SEARCH_SECTIONS"]

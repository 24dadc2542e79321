"""Reports: an offline folder per study with index.html, PNG/SVG figures, summary.md and table.tex.

ponder writes only into folders it created or marked as its own (:mod:`ponder.reporting.ownership`);
``<out>/index.html`` lists every study reported into ``<out>`` (:mod:`ponder.reporting.index`).
"""

from ponder.reporting.html import write_report
from ponder.reporting.index import write_index

__all__ = ["write_report", "write_index"]

"""Reports: an offline folder per study with index.html, PNG figures and summary.md."""

from ponder.report.html import write_index, write_report

__all__ = ["write_report", "write_index"]

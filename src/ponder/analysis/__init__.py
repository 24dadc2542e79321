"""Analysis: statistics over a study's records and the answer sentence computed from them."""

from ponder.analysis.summary import Analysis, analyze, fingerprint

__all__ = ["Analysis", "analyze", "fingerprint"]

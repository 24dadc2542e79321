"""Analysis: statistics over a study's records and the answer sentence computed from them.

The names below load on first use, so that ``fingerprint`` (a rerun's check) does not import the
statistics libraries.
"""

from ponder.analysis.stamp import fingerprint

__all__ = ["Analysis", "analyze", "fingerprint"]


def __getattr__(name: str):
    if name in ("Analysis", "analyze"):
        from ponder.analysis import summary

        return getattr(summary, name)
    raise AttributeError(f"module 'ponder.analysis' has no attribute {name!r}")

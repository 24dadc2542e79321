"""Executors: where populations are trained. ``local`` trains in this process."""

from ponder.executors.local import StudyRun, check_plan, run_study, train_chunk

__all__ = ["StudyRun", "check_plan", "run_study", "train_chunk"]

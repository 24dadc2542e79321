"""A study's records and analysis in other shapes: flat pandas tables and an MLflow file store.

- :mod:`ponder.export.frames`: nested JSON (a run's config, its environment, the analysis) as
  flat columns, shared by :func:`ponder.results`, :func:`ponder.report` and the MLflow export;
- :mod:`ponder.export.mlflow`: every run of a study as an MLflow run (``ponder export --format mlflow``).

Both read the store only; nothing here trains or analyzes. Nothing is imported here, so the
MLflow export loads neither scipy nor the analysis.
"""

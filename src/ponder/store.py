"""The results store: one DuckDB file.

Contract:
- a population's results are written in one transaction: after a crash the store holds
  either all of a population's runs with all their records, or none of them;
- records are immutable once written; a finished run (``ok`` or ``diverged``) is never
  trained again, because its id (a hash of its resolved config) is found here;
- a study's current plan (which runs belong to it, what its report covers) is the one it was last
  run with; the plan of each mode (quick, full) is kept apart in ``plans``; the runs themselves
  stay, so ``--quick`` and full runs of a study share what they have in common;
- a missing study raises :class:`~ponder.errors.NotFound`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import duckdb

from ponder.errors import NotFound, StoreError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Store", "SCHEMA_VERSION", "RunRow", "ChunkRows"]

SCHEMA_VERSION = 4
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}  # never fetch code
_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta(key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS studies(name VARCHAR PRIMARY KEY, question VARCHAR, spec_json VARCHAR,
        source VARCHAR, quick BOOLEAN, updated TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS study_runs(study VARCHAR, run_id VARCHAR, arm VARCHAR, arm_json VARCHAR,
        tuned_json VARCHAR, seed INTEGER, PRIMARY KEY(study, run_id))""",
    """CREATE TABLE IF NOT EXISTS runs(run_id VARCHAR PRIMARY KEY, config_json VARCHAR, status VARCHAR,
        diverged_epoch INTEGER, error VARCHAR, population VARCHAR, population_size INTEGER, steps BIGINT,
        wall_s DOUBLE, finished TIMESTAMP, env_json VARCHAR, n_classes INTEGER)""",
    """CREATE TABLE IF NOT EXISTS epochs(run_id VARCHAR, epoch INTEGER, train_loss DOUBLE, train_acc DOUBLE,
        val_loss DOUBLE, val_acc DOUBLE, test_loss DOUBLE, test_acc DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS layers(run_id VARCHAR, epoch INTEGER, layer INTEGER, preact_std DOUBLE,
        act_mean DOUBLE, act_std DOUBLE, zero_frac DOUBLE, dead_frac DOUBLE, grad_norm DOUBLE, sigma_w2 DOUBLE,
        sigma_b2 DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS evals(run_id VARCHAR, probe VARCHAR, kind VARCHAR, level DOUBLE, value DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS analyses(study VARCHAR PRIMARY KEY, fingerprint VARCHAR, json VARCHAR,
        updated TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS plans(study VARCHAR, quick BOOLEAN, run_id VARCHAR, updated TIMESTAMP,
        PRIMARY KEY(study, quick, run_id))""",
]
EPOCH_COLS = ["run_id", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]
LAYER_COLS = ["run_id", "epoch", "layer", "preact_std", "act_mean", "act_std", "zero_frac", "dead_frac", "grad_norm",
              "sigma_w2", "sigma_b2"]
EVAL_COLS = ["run_id", "probe", "kind", "level", "value"]
RUN_COLS = ["run_id", "config_json", "status", "diverged_epoch", "error", "population", "population_size", "steps",
            "wall_s", "finished", "env_json", "n_classes"]


@dataclass(frozen=True)
class RunRow:
    """One row of the ``runs`` table: a finished (``ok``, ``diverged``) or ``failed`` run."""

    run_id: str
    config_json: str
    status: str
    population: str
    population_size: int
    diverged_epoch: int | None = None
    error: str | None = None
    steps: int = 0
    wall_s: float = 0.0
    env_json: str | None = None
    n_classes: int | None = None
    finished: datetime = field(default_factory=lambda: _now())


@dataclass
class ChunkRows:
    """Everything one trained chunk adds to the store, written in one transaction."""

    runs: list[RunRow]
    epochs: list[dict[str, Any]] = field(default_factory=list)  # columns EPOCH_COLS
    layers: list[dict[str, Any]] = field(default_factory=list)  # columns LAYER_COLS
    evals: list[dict[str, Any]] = field(default_factory=list)  # columns EVAL_COLS


def _migrate_1_to_2(con) -> None:
    """Version 2 records each layer's effective sigma_w^2 and sigma_b^2 (NULL for runs trained before)."""
    con.execute("ALTER TABLE layers ADD COLUMN IF NOT EXISTS sigma_w2 DOUBLE")
    con.execute("ALTER TABLE layers ADD COLUMN IF NOT EXISTS sigma_b2 DOUBLE")


def _migrate_2_to_3(con) -> None:
    """Version 3 adds the ``evals`` table: measurements of a trained model beyond its learning curve
    (accuracy under input shift, loss along lines in parameter space)."""
    con.execute(next(stmt for stmt in _SCHEMA if "evals(" in stmt))


def _migrate_3_to_4(con) -> None:
    """Version 4 records each run's number of classes, so analysis never reloads a dataset (NULL for
    runs trained before), keeps each study's latest analysis (``analyses``) and the plan of each mode
    (``plans``: quick and full apart)."""
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_classes INTEGER")
    con.execute(next(stmt for stmt in _SCHEMA if "analyses(" in stmt))
    con.execute(next(stmt for stmt in _SCHEMA if "plans(" in stmt))
    con.execute("""INSERT INTO plans SELECT p.study, s.quick, p.run_id, s.updated FROM study_runs p
                   JOIN studies s ON s.name = p.study""")


MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4}  # from version -> function bringing the store to version + 1


class Store:
    """A DuckDB results store at ``path`` (``":memory:"`` for an in-memory one)."""

    def __init__(self, path: str | Path = "ponder.duckdb", *, read_only: bool = False):
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:" and read_only and not Path(self.path).exists():
            raise NotFound(f"store {self.path!r} does not exist; run a study first (ponder run STUDY --store {self.path})")
        if self.path != ":memory:" and not Path(self.path).parent.is_dir():
            raise StoreError(f"store {self.path!r}: its folder {str(Path(self.path).parent)!r} does not exist; create it first")
        if self.path != ":memory:":
            _check_owned(self.path)
        self.con = _connect(self.path, read_only)
        version = self._version()
        if version is not None and version > SCHEMA_VERSION:
            self.con.close()
            raise StoreError(f"store {self.path!r} has schema version {version}, newer than the {SCHEMA_VERSION} this "
                             "ponder reads; use the ponder release that wrote it")
        if version is not None and version < SCHEMA_VERSION:
            self._migrate(version, read_only)
        if not read_only:  # idempotent: also completes a store of this version missing a newer table
            with self._transaction():  # a kill while creating the schema leaves nothing half-made
                for stmt in _SCHEMA:
                    self.con.execute(stmt)
                self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        version = self._version()
        if version is None or version != SCHEMA_VERSION:
            raise StoreError(f"store {self.path!r} has schema version {version}, this ponder reads {SCHEMA_VERSION}; "
                             "use the ponder release that wrote it")

    def _version(self) -> int | None:
        return _schema_version(self.con, self.path)

    def _migrate(self, version: int, read_only: bool) -> None:
        """Bring an older store to the current schema, one numbered migration at a time, in one transaction."""
        if read_only:  # migrations need a writable connection; reopen, migrate, reopen read-only
            self.con.close()
            self.con = _connect(self.path, False)
        start = version
        try:
            with self._transaction():
                while version < SCHEMA_VERSION:
                    MIGRATIONS[version](self.con)
                    version += 1
                self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
        except duckdb.Error as exc:  # tables its version promises are missing or differ: rolled back, left as it was
            self.con.close()
            raise StoreError(f"store {self.path!r} says schema version {start} but cannot be brought to {SCHEMA_VERSION} "
                             f"({str(exc).splitlines()[0]}); it is left as it was: choose another --store") from None
        if read_only:
            self.con.close()
            self.con = _connect(self.path, True)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------------

    def save_plan(self, *, name: str, question: str, spec: dict[str, Any], source: str, quick: bool,
                  runs: Iterable[Any]) -> None:
        """Record a study and the runs of its current plan (replacing an older plan; nothing is written when the
        stored plan is this one, so a rerun that trains nothing writes nothing)."""
        plan = sorted((r.id, r.arm.label, json.dumps(r.arm.as_dict()), json.dumps(dict(r.tuned)), r.seed) for r in runs)
        if self._plan_stored(name, [question, json.dumps(spec, default=str), source, quick], plan):
            return
        import pandas as pd  # loaded only when something is written

        rows = pd.DataFrame(plan, columns=["run_id", "arm", "arm_json", "tuned_json", "seed"]).assign(study=name)
        with self._transaction():
            self.con.execute("DELETE FROM studies WHERE name = ?", [name])
            self.con.execute("INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?)",
                             [name, question, json.dumps(spec, default=str), source, quick, _now()])
            self.con.execute("DELETE FROM study_runs WHERE study = ?", [name])
            self.con.execute("DELETE FROM plans WHERE study = ? AND quick = ?", [name, quick])
            if len(rows):
                self.con.register("plan_rows", rows)
                self.con.execute("INSERT INTO study_runs SELECT study, run_id, arm, arm_json, tuned_json, seed FROM plan_rows")
                self.con.execute("INSERT INTO plans SELECT DISTINCT study, ?, run_id, ? FROM plan_rows", [quick, _now()])
                self.con.unregister("plan_rows")

    def _plan_stored(self, name: str, study_row: list[Any], plan: list[tuple]) -> bool:
        """Whether ``studies`` holds this row (question, spec, source, mode), the study's runs are exactly ``plan``
        (run id, arm, arm JSON, tuned JSON, seed; sorted) and this mode's plan has exactly its run ids."""
        row = self.con.execute("SELECT question, spec_json, source, quick FROM studies WHERE name = ?", [name]).fetchone()
        return (row is not None and list(row) == study_row
                and self.con.execute("SELECT run_id, arm, arm_json, tuned_json, seed FROM study_runs WHERE study = ? "
                                     "ORDER BY 1, 2, 3, 4, 5", [name]).fetchall() == plan
                and self.con.execute("SELECT run_id FROM plans WHERE study = ? AND quick = ? ORDER BY 1",
                                     [name, study_row[3]]).fetchall() == [(p[0],) for p in plan])

    def save_chunk(self, rows: ChunkRows, *, before_commit: Callable[[], None] | None = None) -> None:
        """Write a chunk's finished runs with all their records in one transaction.

        ``before_commit`` is called inside the transaction after the inserts (the crash tests' hook).
        """
        self.save_population([asdict(r) for r in rows.runs], rows.epochs, rows.layers, rows.evals,
                             before_commit=before_commit)

    def save_population(self, runs: list[dict[str, Any]], epochs: list[dict[str, Any]], layers: list[dict[str, Any]],
                        evals: list[dict[str, Any]] = (), *, before_commit: Callable[[], None] | None = None) -> None:
        """Write finished runs (dicts with the ``runs`` columns) with all their records in one transaction."""
        import pandas as pd

        frames = {"runs": (pd.DataFrame(runs, columns=RUN_COLS), RUN_COLS),
                  "epochs": (pd.DataFrame(epochs, columns=EPOCH_COLS), EPOCH_COLS),
                  "layers": (pd.DataFrame(layers, columns=LAYER_COLS), LAYER_COLS),
                  "evals": (pd.DataFrame(list(evals), columns=EVAL_COLS), EVAL_COLS)}
        ids = [r["run_id"] for r in runs]
        with self._transaction():
            # A run recorded as failed earlier is replaced by its new result.
            for table in ("epochs", "layers", "evals", "runs"):
                self.con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
            for table, (df, cols) in frames.items():
                if len(df):
                    self.con.register("new_rows", df)
                    self.con.execute(f"INSERT INTO {table} SELECT {', '.join(cols)} FROM new_rows")
                    self.con.unregister("new_rows")
            if before_commit is not None:
                before_commit()

    def _transaction(self):
        store = self

        class _Tx:
            def __enter__(self):
                store.con.execute("BEGIN TRANSACTION")

            def __exit__(self, exc_type, exc, tb):
                store.con.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    # -- reads ----------------------------------------------------------------------------------

    def finished(self, run_ids: list[str]) -> set[str]:
        """The ids among ``run_ids`` that are finished (ok or diverged)."""
        if not run_ids:
            return set()
        rows = self.con.execute("SELECT run_id FROM runs WHERE status IN ('ok', 'diverged') AND run_id IN (SELECT unnest(?::VARCHAR[]))",
                                [list(run_ids)]).fetchall()
        return {r[0] for r in rows}

    def studies(self) -> pd.DataFrame:
        return self.con.execute("SELECT name, question, quick, updated FROM studies ORDER BY name").df()

    def study(self, name: str) -> dict[str, Any]:
        row = self.con.execute("SELECT name, question, spec_json, source, quick, updated FROM studies WHERE name = ?", [name]).fetchone()
        if row is None:
            known = [r[0] for r in self.con.execute("SELECT name FROM studies").fetchall()]
            raise NotFound(f"study {name!r} is not in store {self.path!r}" + (f" (it has: {', '.join(known)})" if known else "; run it first"))
        return {"name": row[0], "question": row[1], "spec": json.loads(row[2]), "source": row[3], "quick": row[4], "updated": row[5]}

    def runs(self, study: str) -> pd.DataFrame:
        """One row per run of the study's plan, with its status (``pending`` if not trained)."""
        self.study(study)
        return self.con.execute("""
            SELECT p.run_id, p.arm, p.arm_json, p.tuned_json, p.seed, coalesce(r.status, 'pending') AS status,
                   r.diverged_epoch, r.error, r.config_json, r.population, r.steps, r.wall_s, r.env_json, r.n_classes
            FROM study_runs p LEFT JOIN runs r USING (run_id) WHERE p.study = ? ORDER BY p.arm, p.tuned_json, p.seed""",
                                [study]).df()

    def status_counts(self, study: str) -> dict[str, int]:
        """Runs of the study's plan per status (``pending`` if not trained), the most common first."""
        return dict(self.con.execute("""SELECT coalesce(r.status, 'pending') AS s, count(*) FROM study_runs p
            LEFT JOIN runs r USING (run_id) WHERE p.study = ? GROUP BY s ORDER BY 2 DESC, 1""", [study]).fetchall())

    def epochs(self, study: str) -> pd.DataFrame:
        return self.con.execute("""SELECT e.* FROM epochs e JOIN study_runs p USING (run_id) WHERE p.study = ?
                                   ORDER BY e.run_id, e.epoch""", [study]).df()

    def layers(self, study: str) -> pd.DataFrame:
        return self.con.execute("""SELECT l.* FROM layers l JOIN study_runs p USING (run_id) WHERE p.study = ?
                                   ORDER BY l.run_id, l.epoch, l.layer""", [study]).df()

    def evals(self, study: str) -> pd.DataFrame:
        """Measurements beyond the learning curve: one row per (run, probe, kind, level)."""
        return self.con.execute("""SELECT v.* FROM evals v JOIN study_runs p USING (run_id) WHERE p.study = ?
                                   ORDER BY v.run_id, v.probe, v.kind, v.level""", [study]).df()

    def plan_size(self, study: str, *, quick: bool) -> int:
        """Runs in the stored plan of ``study`` for this mode (quick or full); 0 when it was never run so."""
        return int(self.con.execute("SELECT count(*) FROM plans WHERE study = ? AND quick = ?", [study, quick]).fetchone()[0])

    def fingerprint(self, study: str) -> str:
        """What an analysis of the study depends on: its plan and its finished runs (changes when either does)."""
        row = self.con.execute("""
            SELECT count(*), count(r.run_id), max(r.finished), string_agg(p.run_id || coalesce(r.status, ''), ',' ORDER BY p.run_id)
            FROM study_runs p LEFT JOIN runs r USING (run_id) WHERE p.study = ?""", [study]).fetchone()
        spec = self.con.execute("SELECT spec_json, quick FROM studies WHERE name = ?", [study]).fetchone()
        import hashlib

        return hashlib.sha256(repr((row, spec)).encode()).hexdigest()[:16]

    def save_analysis(self, study: str, fingerprint: str, payload: dict[str, Any]) -> None:
        """Keep the study's analysis (the JSON object ``ponder report --format json`` prints)."""
        with self._transaction():
            self.con.execute("DELETE FROM analyses WHERE study = ?", [study])
            self.con.execute("INSERT INTO analyses VALUES (?, ?, ?, ?)",
                             [study, fingerprint, json.dumps(payload, allow_nan=False), _now()])

    def analysis(self, study: str) -> tuple[str, dict[str, Any]] | None:
        """(fingerprint, analysis JSON) stored for the study, or None."""
        try:
            row = self.con.execute("SELECT fingerprint, json FROM analyses WHERE study = ?", [study]).fetchone()
        except duckdb.CatalogException:  # a read-only store written before the table existed
            return None
        return (row[0], json.loads(row[1])) if row else None

    def count(self, table: str) -> int:
        if table not in ("runs", "epochs", "layers", "evals", "studies", "study_runs", "analyses"):
            raise ValueError(table)
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def export(self, study: str, folder: str | Path, fmt: str) -> list[Path]:
        """Write the study's runs, epochs and layers as Parquet or CSV files in ``folder``."""
        if fmt not in ("parquet", "csv"):
            raise StoreError(f"export format {fmt!r} is not supported; use parquet or csv")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in (("runs", self.runs(study)), ("epochs", self.epochs(study)), ("layers", self.layers(study)),
                         ("evals", self.evals(study))):
            p = out / f"{study}_{name}.{fmt}"
            df.to_parquet(p, index=False) if fmt == "parquet" else df.to_csv(p, index=False)
            paths.append(p)
        return paths


def _connect(path: str, read_only: bool) -> "duckdb.DuckDBPyConnection":
    """A DuckDB connection that never installs or loads extensions; one sentence when it cannot open."""
    try:
        return duckdb.connect(path, read_only=read_only, config=dict(_CONFIG))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreError(f"store {path!r} is in use by another ponder process; wait for it to finish or use "
                             "another --store") from None
        raise StoreError(f"store {path!r} cannot be opened: {str(exc).splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise StoreError(f"store {path!r} is not a ponder store ({str(exc).splitlines()[0]})") from None


def _schema_version(con: "duckdb.DuckDBPyConnection", path: str) -> int | None:
    """The store's schema version; None for an empty database; refuses a database ponder did not write."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not tables:
        return None
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if "meta" in tables else None
        version = int(row[0]) if row else None
    except (duckdb.Error, ValueError, TypeError):
        version = None
    if version is None or version < 1 or "runs" not in tables:  # ponder's versions start at 1
        con.close()
        found = ", ".join(sorted(tables)[:5])
        raise StoreError(f"{path!r} is a DuckDB database that ponder did not write (it has tables {found}); "
                         "ponder leaves it untouched: choose another --store")
    return version


def _check_owned(path: str) -> None:
    """Refuse, before DuckDB touches it, a file that is not a DuckDB database (SQLite, text, ...)."""
    p = Path(path)
    if not p.exists():
        return
    if p.is_dir():
        raise StoreError(f"store {path!r} is a folder; give a file path such as {str(p / 'ponder.duckdb')!r}")
    with open(p, "rb") as fh:
        head = fh.read(16)
    if head and head[8:12] != _MAGIC:
        raise StoreError(f"{path!r} is not a DuckDB database (ponder stores are DuckDB files); "
                         "ponder leaves it untouched: choose another --store")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)

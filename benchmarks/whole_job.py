"""The whole job as a user runs it: start-up, first run, rerun, report from the store, two studies at once.

    python benchmarks/whole_job.py              # writes benchmarks/results/whole_job.{json,md}
    python benchmarks/whole_job.py --store S    # take the full quickstart's store S instead of training it

Every number is the wall time of a ``python -m ponder ...`` process started by this script, in
fresh temporary folders, on this machine, so the ratios are side by side in one run:

- start-up: ``ponder --help`` and ``ponder list studies`` (median of 3);
- rerun: ``ponder run quickstart --quick`` into a fresh store and report folder (the first run),
  then the same command again (it trains nothing and keeps the report); fraction = rerun / first;
- report: ``ponder report quickstart`` of the full quickstart (108 runs) into a fresh folder: first
  with nothing kept for this study state (analysis and every figure computed: a store trained with
  ``--no-report`` or brought from elsewhere), then again into other fresh folders (median of 3),
  which reuse the analysis and figures the first kept (``ponder.reporting.memo``), as any report
  after a ``ponder run`` does;
- sharing: ``ponder run quickstart --quick --no-report`` into two fresh stores one after the other,
  then two started together; ratio = together / one after the other (target <= 1.25). The same
  pair is also timed with ``OMP_WAIT_POLICY=ACTIVE`` (spinning OpenMP workers, the behaviour
  before ponder set the passive policy), to show what the setting does.

The disk cache (generated MNIST-1D, mean-field grids) is warmed first, so "first run" means a
user's second study on this machine, not the very first one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = ["run", "quickstart", "--quick"]


def ponder(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # unset: ponder's own default applies
    return subprocess.Popen([sys.executable, "-m", "ponder", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**base, **(env or {})})


def timed(*commands: list[str], cwd: Path, env: dict | None = None) -> float:
    """Seconds until every command, started together, has finished (each must succeed)."""
    t = time.perf_counter()
    procs = [ponder(c, cwd, env) for c in commands]
    for c, p in zip(commands, procs):
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"ponder {' '.join(c)} failed ({p.returncode}): {err.strip()[-500:]}")
    return time.perf_counter() - t


def startup(tmp: Path) -> dict:
    return {name: statistics.median(timed(args, cwd=tmp) for _ in range(3))
            for name, args in (("help_s", ["--help"]), ("list_studies_s", ["list", "studies"]))}


def rerun(tmp: Path) -> dict:
    timed([*QUICK, "--store", "warm.duckdb", "--out", "warm"], cwd=tmp)  # warms the disk cache
    first = timed([*QUICK, "--store", "q.duckdb", "--out", "q"], cwd=tmp)
    again = timed([*QUICK, "--store", "q.duckdb", "--out", "q"], cwd=tmp)
    return {"first_s": first, "rerun_s": again, "fraction": again / first}


def report(tmp: Path, store: str | None) -> dict:
    if store is None:
        store = str(tmp / "full.duckdb")
        train = timed(["run", "quickstart", "--store", store, "--no-report"], cwd=tmp)
    else:
        train = None
    env = {"PONDER_CACHE": str(tmp / "report-cache")}  # a cache of its own: the first report finds nothing kept
    cold = timed(["report", "quickstart", "--store", store, "--out", "rep-cold"], cwd=tmp, env=env)
    secs = [timed(["report", "quickstart", "--store", store, "--out", f"rep{k}"], cwd=tmp, env=env) for k in range(3)]
    return {"cold_s": cold, "report_s": statistics.median(secs), "all_s": secs, "full_quickstart_train_s": train}


def sharing(tmp: Path, policy: str | None) -> dict:
    env = {"OMP_WAIT_POLICY": policy} if policy else None
    tag = policy or "default"
    one = [[*QUICK, "--no-report", "--store", f"{tag}-{k}.duckdb"] for k in range(4)]
    a = timed(one[0], cwd=tmp, env=env)
    b = timed(one[1], cwd=tmp, env=env)
    both = timed(one[2], one[3], cwd=tmp, env=env)
    return {"one_s": [a, b], "sequential_s": a + b, "together_s": both, "ratio": both / (a + b)}


def markdown(res: dict) -> str:
    s, r, rep, sh = res["startup"], res["rerun"], res["report"], res["sharing"]
    lines = ["# The whole job", "", f"{res['machine']}, {res['cpus']} CPUs; wall time of `python -m ponder ...` "
             "processes started by benchmarks/whole_job.py, side by side in one run.", "",
             "| measured | seconds | ratio | target |", "|---|---|---|---|",
             f"| `ponder --help` (median of 3) | {s['help_s']:.2f} | | < 0.5 s |",
             f"| `ponder list studies` (median of 3) | {s['list_studies_s']:.2f} | | < 0.5 s |",
             f"| `ponder run quickstart --quick`, first run (report included) | {r['first_s']:.1f} | | |",
             f"| the same command again (trains nothing, keeps the report) | {r['rerun_s']:.1f} | {r['fraction']:.2f} of the first | < 0.25 |",
             f"| `ponder report quickstart` (full study, 108 runs) into a fresh folder, nothing kept (analysis and figures "
             f"computed) | {rep['cold_s']:.1f} | | |",
             f"| the same into other fresh folders, the kept analysis and figures reused (median of 3) | "
             f"{rep['report_s']:.1f} | | < 5 s |"]
    for key, label in (("passive", "ponder's default (OMP_WAIT_POLICY=PASSIVE)"), ("active", "OMP_WAIT_POLICY=ACTIVE")):
        if key in sh:
            x = sh[key]
            lines.append(f"| two `quickstart --quick --no-report` together, {label} | {x['together_s']:.1f} | "
                         f"{x['ratio']:.2f} of one after the other ({x['sequential_s']:.1f} s) | <= 1.25 |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="a store holding the full quickstart (default: train it here)")
    ap.add_argument("--out", default=str(RESULTS / "whole_job"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env_cache = os.environ.get("PONDER_CACHE")
        res = {"machine": platform.platform(), "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
               "cache": env_cache or "default", "startup": startup(tmp), "rerun": rerun(tmp),
               "sharing": {"passive": sharing(tmp, None), "active": sharing(tmp, "ACTIVE")},
               "report": report(tmp, args.store)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()

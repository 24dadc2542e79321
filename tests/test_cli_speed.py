"""``ponder --help`` and ``ponder list studies`` start at once: they import nothing heavy.

Nothing here is timed (the machines are shared and slow); what makes start-up slow is importing
torch and friends, so the tests check which modules a fresh interpreter has loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys


# pydantic is not in the list: typer itself loads it to parse option values.
HEAVY = ("torch", "numpy", "pandas", "duckdb", "matplotlib", "scipy", "rich.progress", "ponder.catalog",
         "ponder.study", "ponder.store")

PROBE = """
import json, sys
from typer.testing import CliRunner
import ponder.cli
heavy = {heavy!r}
seen = {{"import ponder.cli": [m for m in heavy if m in sys.modules]}}
for args in (["--help"], ["list", "studies"], ["theory", "--help"], ["run", "--help"], ["init", "--help"]):
    result = CliRunner().invoke(ponder.cli.app, args)
    assert result.exit_code == 0, (args, result.output)
    seen[" ".join(args)] = [m for m in heavy if m in sys.modules]
print(json.dumps(seen))
"""


def _fresh(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_help_and_list_studies_load_nothing_heavy():
    seen = json.loads(_fresh(PROBE.format(heavy=HEAVY)))
    assert seen == {k: [] for k in seen}, seen

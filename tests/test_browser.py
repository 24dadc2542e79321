"""A real browser opens the reports: headless Chromium (Debian's package) via Playwright.

It loads the index and a study report from disk (file://, offline), and asserts no console
errors, every image decoded (naturalWidth > 0) and every relative link resolves to a file. A
screenshot is saved under test-artifacts/ for people to look at.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from ponder.runner import run_study
from ponder.reporting import write_report
from ponder.store import Store
from ponder.study import load_study

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    p = tmp / "b.toml"
    p.write_text(textwrap.dedent("""
        name = "browser<&>test"
        question = "Does <b>markup</b> in a question stay text & does the report render?"
        seeds = 3
        [dataset]
        name = "spirals"
        options = {n_train = 200, n_test = 100}
        [model]
        depth = 2
        width = 8
        [training]
        epochs = 2
        batch_size = 32
        [factors]
        "model.initializer" = ["torch.default", "keras.he_normal", "critical"]
        "model.activation" = ["relu", "tanh"]
        [tune]
        "training.lr" = [0.05, 0.2]
    """).replace('name = "browser<&>test"', 'name = "browser-test"'))
    study = load_study(p)
    with Store(tmp / "s.duckdb") as st:
        run_study(study, st)
        index = write_report(st, "browser-test", tmp / "reports")
    return index.parent.parent


def _check_page(page, url: str, root: Path) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_load_state("load")
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert not broken, f"images that did not load: {broken}"
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    for h in hrefs:
        u = urlparse(h)
        assert u.scheme == "file", f"a report link leaves the folder: {h}"
        assert Path(unquote(u.path)).exists(), f"broken link {h}"
        assert str(root) in unquote(u.path), f"link outside the report folder: {h}"
    return errors


def test_reports_render_in_chromium(report_dir):
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is needed for the browser test (make test installs it: apt-get install chromium)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        for target in (report_dir / "index.html", report_dir / "browser-test" / "index.html"):
            errors = _check_page(page, target.as_uri(), report_dir)
            assert not errors, errors
            # a wide table scrolls inside itself; the page never scrolls sideways
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), target
        text = page.inner_text("body")
        assert "<b>markup</b>" in text  # user strings are escaped, shown as text
        assert page.locator("b", has_text="markup").count() == 0
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "report.png").stat().st_size > 20_000

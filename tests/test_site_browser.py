"""The built site in a real browser (Playwright driving Debian's Chromium), opened from file:// with the network cut.

The site is built from synthetic result files (no model runs). Screenshots go to test-output/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from synthetic_results import site_project, write_result

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
XSS_NAME = "<img src=x onerror=alert(1)>"
ENTRIES = {"Source (no adaptation)": 0.70, "BN-adapt": 0.85, "TENT": 0.88, "alpha-BN": 0.80, XSS_NAME: 0.60}


PUBLISHED = """\
citation: A. Author. A paper on adaptation. 2021.
source: Table 2
url: https://example.org/paper
benchmark: synth
model: {name: small_cnn w8, checkpoint_sha256: %s}
setting: {protocol: per_scenario, severity: 5, notes: reset before each corruption}
rows:
  - {method: bn_adapt, label: BN (paper), values: {gaussian_noise: 20.0, contrast: 25.0, mean: 22.5}}
""" % ("c" * 64)
SEQUENCE = {"noise-sequence": {"segments": [{"n": 300, "accuracy": 0.6}, {"n": 300, "accuracy": 0.5}],
                               "online": {"window": 100, "error": [0.5, 0.4, 0.35, 0.6, 0.5, 0.45]}}}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from shiftbench.leaderboard import build_site
    from shiftbench.run.benchmark import load_benchmark

    root = tmp_path_factory.mktemp("siteproj")
    site_project(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        current = load_benchmark("synth").content_hash()
        results = root / "leaderboard" / "results"
        methods = {"Source (no adaptation)": "source", "BN-adapt": "bn_adapt", "TENT": "tent", "alpha-BN": "alpha_bn"}
        for name, quality in ENTRIES.items():
            write_result(results, name, methods.get(name, "source"), benchmark_hash=current, quality=quality,
                         failed=("relabel",) if name == "TENT" else (), seeds=(0, 1, 2), extra=SEQUENCE,
                         submission={"notes": "<script>alert(2)</script>", "url": "javascript:alert(3)"})
        write_result(results, "Oracle prior", "bn_adapt", benchmark_hash=current, quality=0.95,
                     submission={"oracle": True}, extra={"dirichlet-a1": {"prior_l1": 0.08}})
        write_result(results, "Old run", "source", benchmark_hash="0" * 16, quality=0.9)
        write_result(results, "TENT continual", "tent", benchmark_hash=current, quality=0.86, protocol="continual")
        published = root / "leaderboard" / "published"
        published.mkdir()
        (published / "paper.yaml").write_text(PUBLISHED)
        index = build_site(results, root / "leaderboard" / "site")
    return index


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page that records console errors, page errors, dialogs and any request that is not file://."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    network = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            network.append(route.request.url)
            route.abort()

    context.route("**/*", only_files)
    pg = context.new_page()
    pg.problems, pg.dialogs, pg.network = [], [], network
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def visible_names(page) -> list[str]:
    return [t.strip() for t in page.locator("table.summary tbody tr:visible td.name").all_inner_texts()]


def column(page, index: int) -> list[str]:
    return page.locator(f"table.summary tbody tr:visible td:nth-child({index})").evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-sort') ?? c.textContent.trim())")


ALL = len(ENTRIES) + 3


def test_main_page_loads_from_disk_without_errors_or_network(site, page):
    page.goto(site.as_uri())
    page.wait_for_load_state("load")
    assert len(visible_names(page)) == ALL
    assert page.locator("input.filter").count() == 1
    assert page.locator(".count").first.inner_text() == f"{ALL} rows"  # the script ran
    assert "score" not in page.locator("table.summary thead").inner_text()  # no average across families
    assert "different numbers of seeds" in page.locator(".notice").first.inner_text()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "site-main.png"), full_page=True)
    assert page.problems == [] and page.network == [] and page.dialogs == []


def test_clicking_a_column_head_sorts_rows(site, page):
    page.goto(site.as_uri())
    page.locator("table.summary th", has_text="entry").click()
    names = visible_names(page)
    assert names == sorted(names, key=str.casefold)
    page.locator("table.summary th", has_text="entry").click()
    assert visible_names(page) == sorted(names, key=str.casefold, reverse=True)

    err = page.locator("table.summary th", has_text="covariate error")
    err.click()  # an error column sorts lowest (best) first
    values = [float(v) for v in column(page, 6) if v]
    assert values == sorted(values) and len(values) == ALL
    assert err.get_attribute("aria-sort") == "ascending"
    err.click()
    assert [float(v) for v in column(page, 6) if v] == sorted(values, reverse=True)
    assert page.problems == []


def test_filter_and_facets_hide_rows_that_do_not_match(site, page):
    page.goto(site.as_uri())
    box = page.locator("input.filter")
    box.fill("tent")
    assert sorted(visible_names(page)) == ["TENT", "TENT continual"]
    assert re.match(r"2 of \d+ shown", page.locator(".count").first.inner_text())
    box.fill("bn_adapt")  # matches the method column too
    assert sorted(visible_names(page)) == ["BN-adapt", "Oracle prior"]
    box.fill("")
    page.locator("select[data-facet-for^='table-'][data-facet='protocol']").select_option("continual")
    assert visible_names(page) == ["TENT continual"]
    boards = page.locator("table.boards tbody tr:visible")
    page.locator("select[data-facet-for^='boards-'][data-facet='protocol']").select_option("continual")
    assert boards.count() == 4 and all("continual" in t for t in boards.all_inner_texts())
    page.locator("select[data-facet-for^='boards-'][data-facet='family']").select_option("label")
    assert boards.count() == 1
    assert page.problems == []


def test_covariate_board_shows_mean_and_std_over_three_seeds_published_rows_with_deltas_and_plots(site, page):
    page.goto((site.parent / "synth" / "covariate.html").as_uri())
    page.wait_for_load_state("load")
    board = page.locator("section.board").first
    assert "protocol per scenario" in board.locator("h2").inner_text()
    s5 = board.locator("table.board").first
    heads = [h.strip() for h in s5.locator("thead th").all_inner_texts()]
    assert heads == ["#", "entry", "n", "gaussian_noise", "contrast", "mean"]  # the paper layout
    bn = s5.locator("tr", has=page.locator("td.name a", has_text="BN-adapt"))
    cells = bn.locator("td.num").all_inner_texts()
    assert cells[0].strip() == "2" and cells[1].strip() == "3"  # behind TENT, beyond the spread; 3 seeds
    assert all(re.match(r"\d+\.\d ± \d+\.\d\s*n=3", c.strip()) for c in cells[2:]), cells
    published = s5.locator("tr.published")
    assert published.count() == 1
    text = published.inner_text()
    assert "BN (paper)" in text and "published" in text and "Δ = BN-adapt (ours) − published" in text
    assert re.search(r"25\.0\s*Δ [+-]\d+\.\d", text)
    assert "A. Author. A paper on adaptation. 2021." in board.locator(".citation").inner_text()
    assert board.locator(".sr-summary").first.inner_text().startswith("Error (%) at severity 5: ")
    imgs = board.locator("figure img")
    assert imgs.count() == 2  # error vs severity, online error along the sequence
    assert all(alt and alt.startswith("Line chart") for alt in imgs.evaluate_all("i => i.map(x => x.alt)"))
    assert imgs.evaluate_all("imgs => imgs.every(i => i.naturalWidth > 0)")
    page.screenshot(path=str(OUTPUT / "site-covariate.png"), full_page=True)
    page.locator("select[data-facet='protocol']").select_option("continual")
    assert page.locator("section.board:visible").count() == 1
    assert page.problems == [] and page.network == []


def test_entry_page_opens_from_its_link(site, page):
    page.goto(site.as_uri())
    page.locator("table.summary td.name a", has_text=re.compile(r"^TENT$")).click()
    page.wait_for_load_state("load")
    assert re.search(r"/synth/entries/TENT-[0-9a-f]{6}\.html$", page.url)
    assert page.locator("h1").inner_text() == "TENT"
    assert page.locator("table#cells tbody tr").count() == 3 * 11
    assert "relabel" in page.locator("ul.failures").inner_text()
    assert "RuntimeError: the method diverged" in page.locator("ul.failures").inner_text()
    assert "±" in page.locator(".cards").inner_text()
    page.screenshot(path=str(OUTPUT / "site-entry.png"), full_page=True)
    assert page.problems == [] and page.network == []


def test_every_page_renders_and_a_script_name_never_runs(site, page):
    """The hostile name, notes and url appear as text on every page; no dialog, no error, no request leaves."""
    pages = [site, *sorted(site.parent.glob("synth/*.html")), *sorted(site.parent.glob("synth/entries/*.html"))]
    assert len(pages) >= 1 + 5 + ALL
    for path in pages:
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        broken = page.locator("img").evaluate_all("imgs => imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
        assert broken == [], path
    page.goto(site.as_uri())
    assert page.get_by_text(XSS_NAME, exact=True).count() == 1
    page.get_by_text(XSS_NAME, exact=True).click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == XSS_NAME
    assert "<script>alert(2)</script>" in page.locator("dl.facts").inner_text()
    assert page.locator("dl.facts a[href^='javascript']").count() == 0
    for family in ("label", "concept"):
        page.goto((site.parent / "synth" / f"{family}.html").as_uri())
        page.screenshot(path=str(OUTPUT / f"site-{family}.png"), full_page=True)
    assert page.dialogs == [] and page.problems == [] and page.network == []

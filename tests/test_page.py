"""The search page at `/`, in a real browser: Playwright driving headless Chromium from the
Debian package (`apt-get install -y chromium`; Playwright's own browser download cannot work
offline), against a real server on loopback. Skipped, saying why, where no Chromium is installed;
failed instead in CI (CI set)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from textsearch import Index
from textsearch.server import create_app, running
from textsearch.testing import KeywordEncoder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "no chromium binary: `apt-get install -y chromium` (make install does where it can)"
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason=NO_CHROMIUM)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Calibrated(KeywordEncoder):
    """The keyword fake with a confidence rule, as a calibrated model has."""

    calibration = {"min_margin": 0.2}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("page") / "indexes"
    with Index.create(root / "pets", encoder=Calibrated()) as index:
        index.add([{"id": "cat.txt", "text": "The cat sleeps in the sun.", "lang": "en"},
                   {"id": "dog.txt", "text": "A dog runs in the rain.", "lang": "en"},
                   {"id": "tree.txt", "text": "红色的苹果 tree", "lang": "zh"}])
    with Index.create(root / "empty", encoder=Calibrated()):
        pass
    with running(create_app(root, encoder=Calibrated())) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        pytest.fail(f"CI is set and there is {NO_CHROMIUM}", pytrace=False)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = browser.new_page()  # type: ignore[attr-defined]
    yield page
    page.close()


def _search(page: object, query: str) -> None:
    page.fill("#q", query)  # type: ignore[attr-defined]
    page.click("#go")  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('status').textContent.includes('hits in')")  # type: ignore[attr-defined]


def test_a_search_shows_ranked_hits_with_terms_highlighted(site: str, page: object) -> None:
    page.goto(site + "/")  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('index').options.length === 2")  # type: ignore[attr-defined]
    assert page.eval_on_selector_all("#index option", "os => os.map(o => o.value)") == ["empty", "pets"]  # type: ignore[attr-defined]
    page.select_option("#index", "pets")  # type: ignore[attr-defined]
    _search(page, "cat sun")
    docs = page.eval_on_selector_all("li.hit .doc", "es => es.map(e => e.textContent)")  # type: ignore[attr-defined]
    assert docs[0] == "cat.txt"
    marks = page.eval_on_selector_all("li.hit:first-child mark", "es => es.map(e => e.textContent)")  # type: ignore[attr-defined]
    assert marks == ["cat", "sun"]
    assert page.text_content("li.hit:first-child .meta") == "lang: en"  # type: ignore[attr-defined]
    assert page.is_hidden("#nomatch")  # type: ignore[attr-defined]
    # the URL holds the search: opening it again runs it
    query = parse_qs(urlparse(page.url).query)  # type: ignore[attr-defined]
    assert (query["q"], query["index"], query["mode"]) == (["cat sun"], ["pets"], ["dense"])
    again = page.context.browser.new_page()  # type: ignore[attr-defined]
    again.goto(page.url)  # type: ignore[attr-defined]
    again.wait_for_function("document.querySelectorAll('li.hit').length > 0")
    assert again.text_content("li.hit .doc") == "cat.txt"
    again.close()


def test_no_confident_match_is_said_and_low_hits_are_marked(site: str, page: object) -> None:
    page.goto(site + "/?index=pets")  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('index').options.length === 2")  # type: ignore[attr-defined]
    page.select_option("#index", "pets")  # type: ignore[attr-defined]
    _search(page, "house")  # a word of the vocabulary that no document holds
    assert page.is_visible("#nomatch")  # type: ignore[attr-defined]
    assert page.eval_on_selector_all("li.hit", "es => es.length") == 0  # type: ignore[attr-defined]
    page.check("#low")  # type: ignore[attr-defined]
    _search(page, "house")
    assert page.is_visible("#nomatch")  # type: ignore[attr-defined]
    assert page.eval_on_selector_all("li.hit.low .badge", "es => es.map(e => e.textContent)")[0] == "low confidence"  # type: ignore[attr-defined]


def test_keyword_mode_a_filter_and_errors(site: str, page: object) -> None:
    page.goto(site + "/")  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('index').options.length === 2")  # type: ignore[attr-defined]
    page.select_option("#index", "pets")  # type: ignore[attr-defined]
    page.select_option("#mode", "keyword")  # type: ignore[attr-defined]
    page.fill("#where", "lang = zh")  # type: ignore[attr-defined]
    _search(page, "苹果")
    assert page.eval_on_selector_all("li.hit .doc", "es => es.map(e => e.textContent)") == ["tree.txt"]  # type: ignore[attr-defined]
    assert page.eval_on_selector_all("li.hit mark", "es => es.map(e => e.textContent)") == ["苹果"]  # type: ignore[attr-defined]
    page.fill("#where", "colour = red")  # type: ignore[attr-defined]
    page.fill("#q", "苹果")  # type: ignore[attr-defined]
    page.click("#go")  # type: ignore[attr-defined]
    page.wait_for_selector("#status.error")  # type: ignore[attr-defined]
    assert "colour" in page.text_content("#status")  # type: ignore[attr-defined]


def test_enter_that_ends_an_ime_composition_does_not_search(site: str, page: object) -> None:
    page.goto(site + "/")  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('index').options.length === 2")  # type: ignore[attr-defined]
    page.fill("#q", "可爱")  # type: ignore[attr-defined]
    submitted = page.evaluate("""() => {  // an input method's Enter: keydown with isComposing
        let fired = false;
        document.getElementById('search').addEventListener('submit', () => { fired = true; });
        const event = new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true, cancelable: true});
        const allowed = document.getElementById('q').dispatchEvent(event);
        return {fired, allowed};
    }""")  # type: ignore[attr-defined]
    assert submitted == {"fired": False, "allowed": False}  # the page cancelled it
    assert page.text_content("#status") == ""  # type: ignore[attr-defined]


def test_the_page_needs_nothing_from_the_internet(site: str, page: object) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site) else None)  # type: ignore[attr-defined]
    page.goto(site + "/?q=cat&index=pets")  # type: ignore[attr-defined]
    page.wait_for_function("document.querySelectorAll('li.hit').length > 0")  # type: ignore[attr-defined]
    assert outside == []
    assert Path(__file__).resolve().parents[1].joinpath("textsearch", "data", "page.html").is_file()


def test_copies_of_one_text_are_one_hit_that_shows_their_count(browser: object, tmp_path: Path) -> None:
    root = tmp_path / "indexes"
    with Index.create(root / "reviews", encoder=Calibrated()) as index:
        index.add([{"id": f"{name}.txt", "text": "The cat sleeps in the sun."} for name in "abc"]
                  + [{"id": "dog.txt", "text": "A dog runs in the rain."}])
    page = browser.new_page()  # type: ignore[attr-defined]
    with running(create_app(root, encoder=Calibrated())) as url:
        page.goto(url + "/?q=cat&index=reviews")
        page.wait_for_function("document.querySelectorAll('li.hit').length > 0")
        assert page.eval_on_selector_all("li.hit .badge.copies", "es => es.map(e => e.textContent)") == ["3 copies"]
        assert sorted(page.get_attribute("li.hit .badge.copies", "title").split("\n")) == ["a.txt", "b.txt", "c.txt"]
        assert page.eval_on_selector_all("li.hit", "es => es.length") == 2  # the copies, then the dog
    page.close()

"""The built study site, opened from disk in headless Chromium.

Run after building the site (``python -m sphinx -W -b html docs docs/_build/html``):

    pytest docs/test_site.py

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and
selenium (the ``docs`` extra).  Selenium is pointed at ``/usr/bin/chromedriver``, so it
never downloads a driver or a browser.  ``MINIREG_SITE`` overrides the build folder.

Every page is loaded once (a module-scoped fixture); the tests then assert on what the
browser saw: the page loaded, MathJax typeset every equation and no raw TeX is left in
the text, every image decoded, the console stayed clean, no request left the disk, and
every internal link (file and fragment) resolves.  The Adam and BatchNorm pages are
saved as full-page screenshots in ``docs/_build/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urldefrag, urlparse

import pytest
from selenium import webdriver  # the docs extra

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

DOCS = Path(__file__).resolve().parent
SITE = Path(os.environ.get("MINIREG_SITE", DOCS / "_build" / "html")).resolve()
SCREENSHOTS = DOCS / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


if not (SITE / "index.html").exists():
    pytest.fail(
        f"no built site in {SITE}: run `python -m sphinx -W -b html docs docs/_build/html` first",
        pytrace=False,
    )

# TeX that MathJax would have replaced: a command or delimiter left in visible text means
# an equation was not typeset.  Code blocks are excluded (the kernels' docstrings are
# shown raw in the source listings).
RAW_TEX = re.compile(
    r"\\(frac|sqrt|begin|end|mathrm|text|hat|sum|beta|lambda|theta|epsilon)\b|\\\(|\\\["
)

# Waits until MathJax (if the page has it) has finished, then reports what the page shows.
PROBE = r"""
const done = arguments[arguments.length - 1];
const report = () => {
  const hidden = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT']);
  const skip = el => el.closest('pre, code, .highlight, mjx-container, .MathJax');
  let text = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !hidden.has(parent.tagName) && !skip(parent)) text.push(walker.currentNode.data);
  }
  done({
    title: document.title,
    ready: document.readyState,
    mathjax: typeof window.MathJax !== 'undefined',
    math_nodes: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    text: text.join(' '),
    images: Array.from(document.images).map(
      i => ({src: i.currentSrc || i.src, complete: i.complete, width: i.naturalWidth})),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: Array.from(document.querySelectorAll('[id], a[name]'))
      .map(e => e.id || e.getAttribute('name')),
    height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),
  });
};
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(report, e => { console.error('MathJax failed: ' + e); report(); });
} else {
  report();
}
"""


@dataclass
class Page:
    path: Path
    seconds: float
    info: dict
    console: list[dict]
    requests: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(SITE).as_posix()


def _pages() -> list[Path]:
    return sorted(SITE.rglob("*.html"))


def _driver(profile: str) -> Chrome:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _requests(driver: Chrome) -> list[str]:
    """URLs the page asked for, from the DevTools network events."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Page]]:
    """Every page of the site, loaded once; screenshots of the Adam and BatchNorm pages."""
    profile = tempfile.mkdtemp(prefix="minireg-chromium-")
    driver = _driver(profile)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(30)
    pages: dict[str, Page] = {}
    try:
        driver.get("about:blank")  # the browser's own start-up requests go to this page's logs
        driver.get_log("performance")
        driver.get_log("browser")
        for path in _pages():
            start = time.perf_counter()
            driver.get(path.as_uri())
            info = driver.execute_async_script(PROBE)
            page = Page(
                path,
                time.perf_counter() - start,
                info,
                driver.get_log("browser"),
                _requests(driver),
            )
            pages[page.name] = page
            if page.name in ("study/adam.html", "study/batchnorm.html"):
                _screenshot(
                    driver,
                    info["height"],
                    SCREENSHOTS / page.name.replace("study/", "").replace(".html", ".png"),
                )
        yield pages
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _screenshot(driver: Chrome, height: int, out: Path) -> None:
    """The whole page, not just the window."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}},
    )  # fmt: skip
    out.write_bytes(base64.b64decode(shot["data"]))


# ---------------------------------------------------------------------------- every page
def test_every_page_loads(site: dict[str, Page]) -> None:
    assert len(site) == len(_pages()) > 20
    for page in site.values():
        assert page.info["ready"] == "complete", page.name
        assert page.info["title"], page.name


def test_equations_are_typeset(site: dict[str, Page]) -> None:
    with_math = [p for p in site.values() if p.info["math_nodes"]]
    assert len(with_math) >= 10  # the study pages, the API pages, the contract
    for page in with_math:
        assert page.info["mathjax"], f"{page.name}: has equations but no MathJax"
        assert page.info["typeset"] >= page.info["math_nodes"], (
            f"{page.name}: {page.info['math_nodes']} equations, {page.info['typeset']} typeset"
        )
        assert page.info["mjx_errors"] == 0, f"{page.name}: MathJax could not parse an equation"
    for page in site.values():
        raw = RAW_TEX.search(page.info["text"])
        if raw is not None:
            context = page.info["text"][max(raw.start() - 60, 0) : raw.end() + 60]
            pytest.fail(f"{page.name}: raw TeX left in the text: ...{context}...")


def test_every_image_loaded(site: dict[str, Page]) -> None:
    images = 0
    for page in site.values():
        for image in page.info["images"]:
            images += 1
            assert image["complete"] and image["width"] > 0, (
                f"{page.name}: image not loaded: {image['src']}"
            )
    assert images >= 15  # the gallery and the study pages' figures


def test_no_console_errors(site: dict[str, Page]) -> None:
    for page in site.values():
        errors = [
            entry["message"] for entry in page.console if entry["level"] in ("SEVERE", "ERROR")
        ]
        assert not errors, f"{page.name}: {errors}"


def test_nothing_is_fetched_from_the_network(site: dict[str, Page]) -> None:
    """Offline: every script, stylesheet, font and image comes from the build folder."""
    fetched = 0
    for page in site.values():
        for url in page.requests:
            fetched += 1
            scheme = urlparse(url).scheme
            assert scheme in ("file", "data", "blob", "about"), f"{page.name} requested {url}"
            if scheme == "file":
                assert Path(unquote(urlparse(url).path)).resolve().is_relative_to(SITE), (
                    f"{page.name} requested {url}, outside the site"
                )
    assert fetched > len(site)  # the log worked: each page loads its scripts and styles


def test_internal_links_resolve(site: dict[str, Page]) -> None:
    ids = {page.path: set(page.info["ids"]) for page in site.values()}
    checked = 0
    for page in site.values():
        for href in page.info["links"]:
            url, fragment = urldefrag(href)
            if urlparse(url).scheme != "file":
                continue  # the theme's credits link out; nothing is loaded from there
            target = Path(unquote(urlparse(url).path))
            assert target.exists(), f"{page.name}: broken link {href}"
            if fragment and target.suffix == ".html":
                assert unquote(fragment) in ids.get(target.resolve(), set()), (
                    f"{page.name}: no #{fragment} in {target.name}"
                )
            checked += 1
    assert checked > 500


# ---------------------------------------------------------------------------- what the pages show
def test_api_reference_covers_every_public_name(site: dict[str, Page]) -> None:
    """Each name in a public module's ``__all__`` (and each kernel) has an entry."""
    import importlib

    api_pages = [page for name, page in site.items() if name.startswith("api/")]
    documented = set().union(*(set(page.info["ids"]) for page in api_pages))
    modules = ["minireg", "minireg.optim", "minireg.optim.lr_scheduler", "minireg.nn",
               "minireg.nn.init", "minireg.nn.utils", "minireg.regularization",
               "minireg.training"]  # fmt: skip
    missing = []
    for name in modules:
        module = importlib.import_module(name)
        for member in module.__all__:
            obj = getattr(module, member)
            if inspect.ismodule(obj) or (name == "minireg.nn" and member == "Parameter"):
                continue  # sub-packages have their own pages; nn.Parameter is minireg.Parameter
            if f"{name}.{member}" not in documented:
                missing.append(f"{name}.{member}")
    functional = importlib.import_module("minireg.nn.functional")
    for member in dir(functional):
        public = not member.startswith("_") and inspect.isfunction(getattr(functional, member))
        if public and f"minireg.nn.functional.{member}" not in documented:
            missing.append(f"minireg.nn.functional.{member}")
    for kernel in ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "nadam", "radam"):
        if f"minireg.optim.{kernel}.{kernel}" not in documented:
            missing.append(f"minireg.optim.{kernel}.{kernel}")
    assert not missing, f"not in the API reference: {missing}"


def test_adam_page_shows_equations_source_torch_error_and_figure(site: dict[str, Page]) -> None:
    import minireg.optim.adam

    page = site["study/adam.html"]
    html = page.path.read_text()
    assert page.info["typeset"] >= 10  # the kernel's equations and the prose
    # the kernel's source, numbered with the file's real line numbers
    _, first = inspect.getsourcelines(minireg.optim.adam.adam)
    numbered = re.compile(
        rf'<span class="linenos">{first}</span><span class="k">def</span>'
        r'(<span class="w">)? (</span>)?<span class="nf">adam</span>'
    )
    assert numbered.search(html), f"no line {first} starting `def adam` in the listing"
    assert '<span class="pre">torch.optim.Adam</span></code>' in html  # the counterpart
    # the measured error, as the JSON has it
    rows = json.loads((DOCS.parent / "figures" / "fidelity.json").read_text())["rows"]
    adam = next(row for row in rows if row["label"] == "Adam")
    assert f"{adam['float32']['rel']:.1e}" in page.info["text"]
    assert any(
        i["src"].endswith("trajectories_quadratic.png") and i["width"] > 0
        for i in page.info["images"]
    )
    assert (SCREENSHOTS / "adam.png").stat().st_size > 50_000


def test_batchnorm_page_screenshot(site: dict[str, Page]) -> None:
    page = site["study/batchnorm.html"]
    assert page.info["typeset"] >= 5
    assert any(i["src"].endswith("batchnorm.png") and i["width"] > 0 for i in page.info["images"])
    assert (SCREENSHOTS / "batchnorm.png").stat().st_size > 50_000

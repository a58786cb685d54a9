"""The documentation site: it builds with warnings as errors and nitpicky references (a broken
link, anchor, image or docstring fails), its generated pages hold what they generate, and its pages
load in a real headless browser (Debian's chromium) with no console error and every image shown."""
import re

import pytest

from browser import open_pages, serve_directory


def test_the_site_builds_without_a_warning(built_site):
    html, proc = built_site
    assert proc.returncode == 0, f"sphinx -W -n failed:\n{proc.stderr[-6000:]}"
    assert (html / "index.html").exists()


def test_the_cli_reference_is_every_tools_parser(built_site):
    html, _ = built_site
    page = re.sub(r"<[^>]+>", "", (html / "reference" / "cli.html").read_text())  # the text a reader sees
    for tool in ("train_cls", "eval_cls", "analyze_cls", "sweep_cls", "demo_sparse", "make_demo_voc", "train",
                 "test", "train_reid", "test_reid"):
        assert f"python tools/{tool}.py" in page, tool
    for option in ("--transfer-from", "--checklist", "--cfg-options", "--launcher", "--nat"):
        assert option in page, option


def test_the_api_reference_documents_each_package(built_site):
    html, _ = built_site
    page = (html / "reference" / "api.html").read_text()
    for name in ("nat_tasks.core.NastyLoss", "nat_tasks.runtime", "nat_tasks.cls", "nat_tasks.det",
                 "nat_tasks.reid"):
        assert f'id="{name}' in page, name  # an entry of its own, not only a mention


PAGES = {  # page: (a text it shows, how many images it has at least)
    "index.html": ("Nasty adversarial training", 1),
    "user_guide/detection.html": ("MTD + NAT inside", 0),
    "results/demos.html": ("The demo is an ablation", 7),
    "reference/api.html": ("NastyLoss", 0),
}


@pytest.fixture(scope="module")
def opened(built_site):
    """The pages, served on localhost and opened in one headless chromium."""
    html, proc = built_site
    if proc.returncode != 0:
        pytest.skip("the site did not build (see test_the_site_builds_without_a_warning)")
    with serve_directory(html) as url:
        results = open_pages([f"{url}/{page}" for page in PAGES])
    return html, dict(zip(PAGES, results))


@pytest.mark.parametrize("page", PAGES)
def test_pages_load_in_a_browser(opened, page):
    html, results = opened
    expected, images = PAGES[page]
    assert (html / page).read_text().count("<img") >= images  # so that "every image loaded" says something
    result = results[page]
    assert "nat_tasks" in result.title
    assert result.console_errors == [], result.console_errors
    assert result.broken_images == [], result.broken_images
    assert expected in result.text

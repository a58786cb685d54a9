"""Every relative link and image in README.md and the docs pages points at a file that exists,
and every anchor at a heading of that file (the Sphinx build checks the pages too, but not the
README, which GitHub renders)."""
import os

import pytest

from .markdown_files import REPO, anchors, links, markdown_files

EXTERNAL = ("http://", "https://", "mailto:")


def relative_links():
    for path in markdown_files():
        for target, line in links(path):
            if not target.startswith(EXTERNAL):
                yield path, target, line


def test_the_pages_are_found():
    names = {os.path.relpath(p, REPO) for p in markdown_files()}
    assert {"README.md", "docs/index.md", "docs/user_guide/classification.md"} <= names
    assert not any(name.startswith("docs/_build") for name in names)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: os.path.relpath(p, REPO))
def test_relative_links_and_images_exist(path):
    broken = []
    for target, line in links(path):
        if target.startswith(EXTERNAL):
            continue
        file, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(resolved):
            broken.append(f"{target}: no file {os.path.relpath(resolved, REPO)} ({line})")
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {os.path.relpath(resolved, REPO)}")
    assert not broken, "\n".join(broken)


def test_readme_links_into_the_docs():
    targets = [target for target, _ in links(os.path.join(REPO, "README.md"))]
    assert "docs/index.md" in targets
    assert any(t.endswith(".png") for t in targets), "the README shows one picture"

"""Sphinx configuration of the nat_tasks documentation (MyST Markdown pages, autodoc API pages and
the command-line reference generated from each tool's ``build_parser()``).

Build from the repository root (the CLI pages read ``tools/*.py`` from there):
``python -m sphinx -W -n -b html docs docs/_build/html``. Nothing is fetched from the
network (no intersphinx), so the build and the pages work offline.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # nat_tasks importable from a checkout without an install
os.environ.setdefault("MPLBACKEND", "Agg")

project = "nat_tasks"
author = "nat_tasks developers"
copyright = "nat_tasks developers"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinxarg.ext"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "**/sweep.md"]  # sweep.md: a generated table, included by sweep_demo/README.md

myst_heading_anchors = 3  # [text](page.md#a-section-title) links are checked like any reference
myst_enable_extensions = ["colon_fence"]
suppress_warnings = []

smartquotes = False  # keep "--option" and quotes as typed (a CLI's text must be copyable)

html_theme = "furo"
html_title = "nat_tasks"
html_favicon = "_static/favicon.svg"
html_static_path = ["_static"]

autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # a method that overrides a library's keeps its own (or no) docstring
autodoc_typehints = "none"  # signatures show names and defaults; types live in the docstrings
autodoc_default_options = {"members": True, "show-inheritance": True}

# Third-party classes our public API derives from or names; their docs are not built here (no
# intersphinx: the build stays offline), so references to them cannot resolve.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|mmengine|mmdet|mmcv|torchreid|argparse|collections|contextlib|"
               r"typing|dataclasses|enum|abc|pathlib|json)(\..*)?"),
    (r"py:.*", r"(nn|Tensor|Module|Dataset|Sampler|Path|BaseModel|Hook|Runner|Config)"),
]


def _end_lists(app, what, name, obj, options, lines):
    """Our docstrings end a bullet list with a plain line (``- a``, ``- b``, then ``Returns ...``);
    reStructuredText wants a blank line there. Insert it, so the rest of the docstring is checked."""
    out, bullet = [], None  # bullet: the indentation of the bullet list being read
    for line in lines:
        text = line.lstrip()
        width = len(line) - len(text)
        if bullet is not None and text and width <= bullet and not text.startswith("- "):
            out.append("")
        if text.startswith("- "):
            bullet = width
        elif not text or width <= (bullet if bullet is not None else -1):
            bullet = None
        out.append(line)
    lines[:] = out


def _public_name(app, env, node, contnode):
    """``nat_tasks.core.attack_registry.Attack`` (where a class is defined, as a base class names
    it) -> ``nat_tasks.core.Attack`` (where the API page documents it), if it is documented there."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("nat_tasks."):
        return None
    parts = target.split(".")
    public = ".".join(parts[:2] + parts[-1:])
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], public, node,
                                             contnode)


def setup(app):
    app.connect("autodoc-process-docstring", _end_lists)
    app.connect("missing-reference", _public_name)

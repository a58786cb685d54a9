import importlib.util
import os
import subprocess
import sys

import pytest
from browser import unavailable

from .markdown_files import DOCS, REPO


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The docs built once per session as the documented command does (warnings as errors,
    nitpicky references), into a temporary folder: ``(html_dir, completed_process)``."""
    for module in ("sphinx", "myst_parser", "sphinxarg", "furo"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (pip install -r requirements-docs.txt)")
    out = tmp_path_factory.mktemp("docs")
    html, doctrees = out / "html", out / "doctrees"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html",
                           "-d", str(doctrees), DOCS, str(html)],
                          cwd=REPO, capture_output=True, text=True, env=dict(os.environ, MPLBACKEND="Agg"))
    return html, proc

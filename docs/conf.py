"""Sphinx configuration of minireg's study site.

Build (from the repository root):  python -m sphinx -W -b html docs docs/_build/html
then open docs/_build/html/index.html.  Everything the pages need is in the build:
MathJax comes from the sphinx-mathjax-offline package and is copied into _static/.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout, installed or not
sys.path.insert(0, str(DOCS / "_ext"))

minireg = importlib.import_module("minireg")  # from ROOT, put first on the path above

project = "minireg"
author = "the minireg authors"
copyright = "minireg authors, MIT licence"
release = version = minireg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # ships MathJax 3 and copies it into _static/mathjax
    "minireg_docs",  # docs/_ext/minireg_docs.py: kernels by dotted name, fidelity tables
]
# Relative to _static/: the local copy.  No page loads anything from the network.
# (sphinx-mathjax-offline sets this itself, over any other value; it is repeated here so
# the choice is visible.  docs/test_site.py fails if a page fetches a CDN's MathJax.)
mathjax_path = "mathjax/tex-chtml.js"

exclude_patterns = ["_build", "test_site.py", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["minireg.css"]
html_theme = "furo"
html_title = f"minireg {release}"
html_theme_options = {"navigation_with_keys": True}
html_last_updated_fmt = None
html_copy_source = False  # the .rst sources are in the repository; the site shows the code

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
add_module_names = True
toc_object_entries = False

# The study pages show each kernel's docstring (autodoc, :no-index:) right above its
# source, which has the full signature; there they get it without annotations.
minireg_compact_signatures = True

minireg_fidelity_json = str(ROOT / "figures" / "fidelity.json")

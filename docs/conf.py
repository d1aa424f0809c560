"""Sphinx configuration for the pacifica-transfer documentation.

Build: ``tox -e docs`` (or ``sphinx-build -W -b html docs docs/_build/html``).
"""
from __future__ import annotations

import os
import sys
from typing import Any, List

from docutils import nodes
from docutils.parsers.rst import Directive

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from pacifica._client.version import __version__  # noqa: E402 - needs the path above

project = 'pacifica-transfer'
author = 'the pacifica-transfer contributors'
copyright = 'the pacifica-transfer contributors; LGPL-3.0-or-later'  # noqa: A001 - Sphinx's name
version = release = __version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.viewcode',
]
root_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path: List[str] = []

autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_typehints = 'signature'
# The library's docstrings are plain reStructuredText; no napoleon needed.


class CommandHelp(Directive):
    """``.. command-help:: pacifica.uploader.cli``: the command's own ``--help`` text.

    Rendering it from the parser keeps this page and the program from ever
    disagreeing.
    """

    required_arguments = 1

    def run(self) -> List[Any]:
        import importlib

        try:
            module = importlib.import_module(self.arguments[0])
        except ImportError as err:
            return [self.state.document.reporter.warning(
                'command-help: cannot import {}: {}'.format(self.arguments[0], err), line=self.lineno)]
        parser = module.build_parser()
        os.environ['COLUMNS'] = '100'  # argparse wraps to the terminal width
        text = parser.format_help()
        return [nodes.literal_block(text, text)]


def setup(app: Any) -> None:
    app.add_directive('command-help', CommandHelp)

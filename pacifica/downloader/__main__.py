"""``python -m pacifica.downloader``: the same as the ``pacifica-download`` command."""
import sys

from pacifica.downloader.cli import main

sys.exit(main())

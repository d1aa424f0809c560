"""``python -m pacifica.uploader``: the same as the ``pacifica-upload`` command."""
import sys

from pacifica.uploader.cli import main

sys.exit(main())

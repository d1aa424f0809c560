"""The distribution version, read by setup.cfg and the --version flags."""
__version__ = "0.1.0"

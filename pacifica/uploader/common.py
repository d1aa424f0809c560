"""Home of :class:`CommonBase` under its pacifica-uploader name (one implementation for both packages)."""
from pacifica._client.common import CommonBase

__all__ = ['CommonBase']

"""mperror: what lower precision does to scientific ML, with proof and with measurement."""

from mperror import formats
from mperror.formats import FloatFormat, Overflow

__all__ = ["FloatFormat", "Overflow", "formats"]
__version__ = "0.1.0"

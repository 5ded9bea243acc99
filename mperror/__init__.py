"""mperror: what lower precision does to scientific ML, with proof and with measurement."""

from mperror import formats, reference
from mperror.formats import FloatFormat, Overflow
from mperror.rounding import RoundMode, round

__all__ = ["FloatFormat", "Overflow", "RoundMode", "formats", "reference", "round"]
__version__ = "0.1.0"

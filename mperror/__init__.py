"""mperror: what lower precision does to scientific ML, with proof and with measurement."""

from mperror import bounds, formats, lipschitz, problems, reference
from mperror.formats import FloatFormat, Overflow
from mperror.rounding import RoundMode, round

__all__ = [
    "FloatFormat",
    "Overflow",
    "RoundMode",
    "bounds",
    "formats",
    "lipschitz",
    "problems",
    "reference",
    "round",
]
__version__ = "0.1.0"

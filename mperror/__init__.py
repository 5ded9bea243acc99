"""mperror: what lower precision does to scientific ML, with proof and with measurement."""

# mperror.emulate is a callable package: mperror.emulate(policy), mperror.emulate.pure(fmt).
from mperror import bounds, emulate, formats, lipschitz, ops, problems, reference
from mperror.formats import FloatFormat, Overflow
from mperror.rounding import RoundMode, round

__all__ = [
    "FloatFormat",
    "Overflow",
    "RoundMode",
    "bounds",
    "emulate",
    "formats",
    "lipschitz",
    "ops",
    "problems",
    "reference",
    "round",
]
__version__ = "0.1.0"

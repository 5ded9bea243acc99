"""Mixed-precision training runs that record what the theorems predict and what happens.

:func:`train` runs one :class:`RunConfig` (a problem, a precision policy, a seed) and returns
its per-step :class:`Trace` and :class:`RunSummary`; :func:`run_study` runs many into run
directories, atomically and resumably. Policies: :mod:`mperror.train.precision`.

>>> cfg = RunConfig(problem="regression", policy="mixed-fp16", iterations=3, eval_every=1)
>>> result = train(cfg)
>>> len(result.trace), result.config.backend in ("native", "emulated")
(3, True)
"""

from mperror.train.config import RunConfig
from mperror.train.precision import Precision, parse
from mperror.train.store import StoredRun, configs_for, load_run, load_runs, run_study
from mperror.train.summary import RunSummary
from mperror.train.trace import COLUMNS, Trace
from mperror.train.trainer import RunResult, initial_scale, train

__all__ = [
    "COLUMNS",
    "Precision",
    "RunConfig",
    "RunResult",
    "RunSummary",
    "StoredRun",
    "Trace",
    "configs_for",
    "initial_scale",
    "load_run",
    "load_runs",
    "parse",
    "run_study",
    "train",
]

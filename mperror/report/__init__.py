"""The verification report: claims judged from stored runs, figures, Markdown and JSON.

:func:`evaluate` judges :data:`CLAIMS` from runs stored by :func:`mperror.train.run_study`;
:func:`write_report` writes ``report.md`` (with PNG figures) and ``report.json``.
"""

from mperror.report.claims import CLAIMS, Claim, evaluate
from mperror.report.document import write_report
from mperror.report.figures import draw_all

__all__ = ["CLAIMS", "Claim", "draw_all", "evaluate", "write_report"]

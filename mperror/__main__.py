"""``python -m mperror`` runs the command line (see :mod:`mperror.cli`)."""

import sys

from mperror.cli import main

sys.exit(main())

"""``python -m orcapulse_local``: see :mod:`orcapulse_local.cli`."""

import sys

from orcapulse_local.cli import main

sys.exit(main())

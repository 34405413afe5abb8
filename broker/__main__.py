"""``python -m broker serve ...`` (same as the ``strom`` command)."""

import sys

from broker.cli import main

sys.exit(main())

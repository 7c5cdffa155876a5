"""``python -m pointly.cli`` runs the ``pointly`` command."""

import sys

from pointly.cli.main import main

sys.exit(main())

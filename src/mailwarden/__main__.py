"""``python -m mailwarden`` runs the command-line interface."""

import sys

from mailwarden.cli import main

sys.exit(main())

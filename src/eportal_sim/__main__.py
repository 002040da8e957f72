"""``python -m eportal_sim``: the same as the ``eportal-sim`` command."""
import sys

from .cli import main

sys.exit(main())

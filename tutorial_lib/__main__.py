"""``python -m tutorial_lib``: see :mod:`tutorial_lib.cli`."""

import sys

from tutorial_lib.cli import main

sys.exit(main())

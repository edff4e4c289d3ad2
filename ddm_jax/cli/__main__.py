"""``python -m ddm_jax.cli``: the ``ddm-jax`` command line."""

import sys

from . import main

sys.exit(main())

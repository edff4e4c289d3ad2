"""The ``ddm-jax`` command line, a thin wrapper over the run-folder functions.

Each subcommand calls one public function (`train_run`, `simulate_run`, `evaluate_run`,
`moments_run`, `export_run`, `analyze_run`, `memory_run`, `run_status`), so the Python API
does exactly what the shell does. One module per command group over ``_common`` (the app,
errors, signals): ``_systems``, ``_train``, ``_outputs``, ``_analyze``, ``_memory``; each
command is registered here, in the order of ``--help``. Bad input ends with a one-line
``error: ...`` on stderr and exit status 1, not a traceback (``ddm-jax --debug ...`` or
``DDM_JAX_DEBUG=1`` shows it); an interrupted training (Ctrl-C
or SIGTERM) keeps its last good checkpoint, says how to resume, and exits with 130 (SIGINT) or
143 (SIGTERM).
"""

import signal

from ._analyze import analyze
from ._common import app as app, on_sigterm, use_compilation_cache
from ._memory import memory
from ._outputs import evaluate, export, info, moments, simulate
from ._systems import systems
from ._train import train

# the order of `ddm-jax --help`
for _command in (systems, train, simulate, evaluate, moments, export, analyze, memory, info):
    app.command()(_command)


def main():
    """Entry point of the ``ddm-jax`` console script."""
    signal.signal(signal.SIGTERM, on_sigterm)
    use_compilation_cache()
    app(prog_name="ddm-jax")

"""What every ``ddm-jax`` subcommand shares: the app, one-line errors, signals, the console."""

import contextlib
import os
from pathlib import Path
from typing import Annotated

import jax
import typer
from rich.console import Console

from ..simulation import cache_dir

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching.",
)

RunArg = Annotated[Path, typer.Argument(help="A run folder written by `ddm-jax train`.")]

_options = {"debug": False}  # set by `main_options` at every invocation


@app.callback()
def main_options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the full traceback of an error instead of one line (or set "
            "DDM_JAX_DEBUG=1).",
        ),
    ] = False,
):
    """Embed stochastic dynamical systems into low-rank RNNs by drift-diffusion matching."""
    _options["debug"] = debug


def debugging() -> bool:
    """Whether errors show their traceback: ``--debug`` or ``DDM_JAX_DEBUG`` (not 0)."""
    return _options["debug"] or os.environ.get("DDM_JAX_DEBUG", "") not in ("", "0")


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler, so a kill unwinds like Ctrl-C."""


def on_sigterm(signum, frame):
    """SIGTERM handler: unwind like Ctrl-C, so training keeps its last checkpoint."""
    raise Terminated()


def use_compilation_cache() -> None:
    """Keep XLA's compiled programs between commands, in ``<cache dir>/xla``.

    Most of a short command's time is compiling: a tiny ``ddm-jax evaluate`` took 38 s
    cold and 20 s with the programs cached. JAX's own ``JAX_COMPILATION_CACHE_DIR`` wins
    when set; an empty ``DDM_JAX_CACHE_DIR`` (as for the measured choices, `_tuning`) keeps
    nothing on disk, and a folder that cannot be written is left out. The cache is keyed by
    the program, the device and the JAX version, so a stale entry is never used; it is safe
    to delete at any time.
    """
    folder = cache_dir()
    if folder is None or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    xla = folder / "xla"
    try:  # a cache that cannot be written is left out, not warned about at every command
        xla.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if not os.access(xla, os.W_OK):
        return
    jax.config.update("jax_compilation_cache_dir", str(xla))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def console() -> Console:
    """A stderr console, 140 columns wide when not a terminal (logs, CI)."""
    out = Console(stderr=True)
    return out if out.is_terminal else Console(stderr=True, width=140)


def fail(message: str, code: int = 1):
    """End the command with ``error: <message>`` on one line of stderr."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def errors(on_interrupt=None):
    """Expected failures become one line on stderr; interrupts exit with 128 + signal.

    With ``--debug`` (or ``DDM_JAX_DEBUG=1``) a failure shows its full traceback instead.
    """
    try:
        yield
    except KeyboardInterrupt as err:
        code = 143 if isinstance(err, Terminated) else 130
        typer.echo(on_interrupt() if on_interrupt else "interrupted.", err=True)
        raise typer.Exit(code) from None
    except (ValueError, OSError, FloatingPointError) as err:
        if debugging():
            raise
        fail(str(err) or type(err).__name__)

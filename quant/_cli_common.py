"""What the commands of the ``quant`` command line share: the console, errors, dates, logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

__all__ = ["console", "fail", "output_to", "parse_date"]

console = Console()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error on stderr; the exit to raise, with ``code``."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def output_to(logfile: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors too) to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(logfile, "a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def parse_date(value: str) -> date:
    """``value`` (YYYY-MM-DD) as a date; a usage error otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None

"""How a command reports a user's mistake: one line, ``prog: error: ...``, and exit status 2.

Mistakes a user can make (a bad config key, a malformed data line, a missing or damaged
checkpoint, a wrong path or value) raise one of the project's errors or a ``ValueError`` /
``FileNotFoundError``; ``run_command`` turns them into that line. ``HYBRIDSEQ_DEBUG=1`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from hybridseq.checkpoint import CheckpointError
from hybridseq.config import ConfigError
from hybridseq.data import DataError

# OSError: a full disk, a read-only directory, a file where a directory belongs (and back)
USER_ERRORS = (ConfigError, DataError, CheckpointError, OSError, ValueError)


def message(e: Exception) -> str:
    """What went wrong, in one line: an OSError as ``file: reason``, not ``[Errno 28] ...``."""
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    return str(e)


def run_command(args: argparse.Namespace, prog: str) -> None:
    """Run a parsed command (``args.func(args)``), reporting a user's mistake in one line."""
    try:
        args.func(args)
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
    except USER_ERRORS as e:
        if os.environ.get("HYBRIDSEQ_DEBUG"):
            raise
        print(f"{prog}: error: {message(e)}", file=sys.stderr)
        sys.exit(2)

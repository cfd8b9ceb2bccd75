"""Run a reporting entry point so that bad input ends in one line and exit code 2, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_main(main: Callable[[], None]) -> None:
    """``main()``; a missing folder or malformed result files print ``error: ...`` on stderr and exit 2
    (the traceback only with ``HYDRA_FULL_ERROR=1``, as for ``seq2seq_rm.run``)."""
    try:
        main()
    except (FileNotFoundError, ValueError, KeyError) as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

"""Running the framework's command-line modules from tests, each run a process of its own.

Importing torch, Lightning and transformers costs about 7 s per process, more than a smoke run's
work, and the suite starts dozens of runs. So runs are forked from a server process that has
imported them once (multiprocessing's ``forkserver`` with a preload): each run still gets a fresh
process, its own working folder, environment, stdout and stderr, exit code and timeout, as
``subprocess.run`` would give it. The server never runs a torch operation, so forking it is safe.
``SEQ2SEQ_RM_TEST_SUBPROCESS=1`` falls back to plain subprocesses.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

PRELOAD = ["seq2seq_rm.pipeline", "seq2seq_rm.compare", "hydra._internal.core_plugins.basic_launcher"]
_context: multiprocessing.context.ForkServerContext | None = None


def _forkserver() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _run_module(module: str, args: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """The child: what ``python -m module args`` would do, with fds 1 and 2 going to files."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), write_through=True)
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    # exit as the interpreter would: threads' exit hooks (joblib's workers stop on them), then atexit
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_module(module: str, *args: str, cwd: Path, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m module *args`` in ``cwd``, like ``subprocess.run(..., capture_output=True, text=True)``."""
    command = [sys.executable, "-m", module, *args]
    environment = dict(os.environ if env is None else env)
    if os.environ.get("SEQ2SEQ_RM_TEST_SUBPROCESS") == "1":
        return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    with tempfile.TemporaryDirectory() as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        child = _forkserver().Process(target=_run_module, args=(module, list(args), str(cwd), environment, out, err))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(command, timeout, Path(out).read_text(), Path(err).read_text())
        return subprocess.CompletedProcess(command, child.exitcode, Path(out).read_text(), Path(err).read_text())


def run_cli(*overrides: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m seq2seq_rm.run *overrides`` in ``cwd``."""
    return run_module("seq2seq_rm.run", *overrides, cwd=cwd, timeout=timeout)

"""``python -m seq2seq_rm.compare <folder>``: the entry point of ``seq2seq_rm.reporting.compare``."""

from seq2seq_rm.reporting.cli import run_main
from seq2seq_rm.reporting.compare import main

if __name__ == "__main__":
    run_main(main)

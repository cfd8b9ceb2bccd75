"""``python -m seq2seq_rm.tuned <tune folder>``: the entry point of ``seq2seq_rm.tuning``."""

from seq2seq_rm.reporting.cli import run_main
from seq2seq_rm.tuning import main

if __name__ == "__main__":
    run_main(main)

"""``python -m seq2seq_rm.report <folder>``: the entry point of ``seq2seq_rm.reporting.report``."""

from seq2seq_rm.reporting.cli import run_main
from seq2seq_rm.reporting.report import main

if __name__ == "__main__":
    run_main(main)

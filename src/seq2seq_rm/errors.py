"""Errors caused by input the user can fix (a config value, a data row, an artifact on disk, a judge
endpoint). Entry points print them as one line and exit with code 2; anything else is a bug and keeps
its traceback."""


class UserError(Exception):
    """Bad input, named precisely enough in the message to fix without a traceback."""

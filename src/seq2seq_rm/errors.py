"""Errors caused by input the user can fix (a config value, a data row, an artifact on disk, a judge
endpoint). Entry points print them as one line and exit with code 2; anything else is a bug and keeps
its traceback."""


class UserError(Exception):
    """Bad input, named precisely enough in the message to fix without a traceback."""


def user_error_in(error: BaseException) -> UserError | None:
    """The UserError behind ``error``, also when a library wrapped it (Hydra's ``instantiate`` raises
    InstantiationException from the error of the constructor it called)."""
    while error is not None:
        if isinstance(error, UserError):
            return error
        error = error.__cause__ or error.__context__
    return None


class ConfigError(UserError, ValueError):
    """A config value outside what its key allows."""


class DataError(UserError, ValueError):
    """A dataset that cannot be used as a whole (no file, no usable pairs, an empty split, a bad row policy)."""

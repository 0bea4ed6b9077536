"""The errors an entry point reports as one line (`error: <message>`) with a non-zero exit code
and no traceback. They live in the lowest layer so that every layer can raise them.

Each class carries its exit code; `utils.cli.run_main` is the one place that prints them.
"""
import os


class ReportedError(Exception):
    """Base class: an expected failure with a message meant for the user."""
    exit_code = 1


class DatasetError(ReportedError):
    """Broken input data; the message names the file and what is wrong with it."""
    exit_code = 2

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UsageError(ReportedError):
    """A bad command-line value or combination."""
    exit_code = 2

"""The one exception type for broken input data: it names the file and what is wrong with it.

Command-line entry points catch it and print `error: <file>: <problem>` with a non-zero exit code
and no traceback.
"""
import os


class DatasetError(Exception):
    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

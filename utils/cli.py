"""Entry-point wrapper: broken input ends with one line on stderr and a non-zero exit code."""
import sys

from scene.errors import DatasetError


class UsageError(Exception):
    """A bad command-line value or combination, reported as one line."""


def run_main(main) -> None:
    try:
        code = main()
    except (DatasetError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)

"""Entry-point wrapper: a ReportedError ends with one line on stderr and its exit code."""
import sys

from utils.errors import ReportedError


def report_errors(main, argv=None) -> int:
    """Run `main(argv)` and return its exit code; a ReportedError is printed as `error: ...`
    and gives that error's code (what the command line sees, for tests that call main)."""
    try:
        return main(argv) or 0
    except ReportedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside train.py's loop (which checkpoints and stops)
        print("interrupted", file=sys.stderr)
        return 130


def run_main(main) -> None:
    sys.exit(report_errors(main))

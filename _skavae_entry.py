"""The ``skavae`` console script, outside the package so that its imports are guarded.

``import skavae`` loads torch (seconds): a Ctrl-C then would print a
traceback from the console-script wrapper, before :func:`skavae.cli.main` can
catch it. This module imports nothing heavy itself; it imports the command
line inside ``try`` and exits 130 with one line, as a Ctrl-C anywhere later
does.
"""

import sys


def main():
    try:
        from skavae.cli import main as run
    except KeyboardInterrupt:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # exit handlers stay quiet
        print("skavae: interrupted", file=sys.stderr)
        return 130
    return run()


if __name__ == "__main__":
    sys.exit(main())

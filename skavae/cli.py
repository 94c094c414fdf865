"""The ``skavae`` command line.

Sub-commands: ``demo`` (generated characters, end to end), ``simulate`` (write a
labelled .mrc folder, or synthetic tomograms with their ground-truth particle
lists), ``affinity`` (class-level affinity CSV of a folder), ``extract`` (cut a
particle list out of tomograms), ``fit`` (train on a folder or a particle list,
save the model), ``evaluate`` (latents, KNN results and figures of a folder;
the classified particle list as STAR) and ``explore`` (the latent map as one
self-contained HTML page). Each lives in its own module of
:mod:`skavae._cli` (``_demo``, ``_fit``, ...) with its parser (``add_arguments``)
and its work (``run``); this module only dispatches and turns errors into exit
codes.

Exit codes: 0 on success, 2 on usage errors (bad options or settings), 1 on
data or runtime errors (missing folder, unreadable file, ...), 130 after Ctrl-C;
errors are one line naming the file or option (``--debug`` shows the traceback).
The console script enters through the top-level module ``_skavae_entry``,
which guards ``import skavae`` itself against Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

import skavae
from skavae._cli import _affinity, _demo, _evaluate, _explore, _extract, _fit, _simulate

COMMANDS = {
    "demo": _demo,
    "simulate": _simulate,
    "affinity": _affinity,
    "extract": _extract,
    "fit": _fit,
    "evaluate": _evaluate,
    "explore": _explore,
}


def _sub(sub, name, module):
    help, description = module.HELP
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=module.EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors",
    )
    module.add_arguments(parser)
    parser.set_defaults(run=module.run)
    return parser


def build_parser():
    """The argument parser of the ``skavae`` command."""
    parser = argparse.ArgumentParser(
        prog="skavae",
        description="Affinity-VAE: similarity-organised latent spaces for 2D images "
        "and 3D volumes.",
        epilog="run `skavae COMMAND --help` for the options and examples of each "
        "command.",
    )
    parser.add_argument("--version", action="version", version=skavae.__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        _sub(sub, name, module)
    return parser


def _one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (ValueError, OSError)) and type(exc).__module__ not in (
        "skavae._cli._common",
    ):
        text = f"{type(exc).__name__}: {text}"
    return text


def _format_warning(message, category, filename, lineno, line=None):
    return f"skavae: {category.__name__}: {' '.join(str(message).split())}\n"


def main(argv=None):
    """Entry point of the ``skavae`` console script; returns the exit code.

    Ctrl-C at any point of the command (building the parser, the imports of a
    command, reading data) exits 130 with one line and no traceback. Run as
    the console script (``argv`` None), further Ctrl-Cs are ignored once the
    command has ended, so exit handlers (torch, tqdm, ...) finish quietly and
    the exit code stays 130.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("skavae: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            _ignore_interrupts()


def _ignore_interrupts():
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        pass


def _main(argv):
    import warnings

    from skavae._cli._common import UsageError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 0
    previous_format = warnings.formatwarning
    warnings.formatwarning = _format_warning  # one line, no source excerpt
    try:
        return args.run(args)
    except KeyboardInterrupt:
        if argv is None:
            _ignore_interrupts()  # a second Ctrl-C must not cut the message
        print(f"skavae {args.command}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        if args.debug:
            raise
        print(f"skavae {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # one-line message unless --debug
        if args.debug:
            raise
        print(
            f"skavae {args.command}: error: {_one_line(exc)} "
            "(--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

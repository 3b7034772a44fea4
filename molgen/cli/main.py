"""``molgen`` console script: builds the parser from the subcommands in
:mod:`molgen.cli.commands` (one module each: ``add_parser`` and ``run``),
applies what every command shares (output-file checks, run directories and
their lock, SIGTERM as Ctrl-C) and turns user errors into one clear line.

Command modules import their workflows inside ``run``: importing them all at
parse time (torch, RDKit, pymatgen, PyG) would make ``molgen --help`` and
every command pay for every other command's stack.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

from molgen import __version__
from molgen.cli.commands import (
    campaign,
    datasets,
    demo,
    discover,
    evaluate,
    export,
    fit_predictor,
    generate,
    models,
    optimize,
    predict,
    report,
    sample,
    score,
    serve,
    train,
)
from molgen.core.device import PRECISIONS, autocast
from molgen.core.errors import MolgenError
from molgen.core.outputs import LOCK_NAME, RunLock, check_output_file, prepare_run_dir, run_dir_owned_elsewhere

EXIT_USER_ERROR = 2

#: Subcommands in the order ``--help`` lists them.
COMMANDS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (train, sample, generate, evaluate, score, optimize, discover, campaign, serve, export, fit_predictor, predict,
                   report, demo, datasets, models)
}
#: Commands that own a run directory (--out): it needs --resume or --overwrite when it holds a run, and
#: one command at a time works in it.
RUN_DIR_COMMANDS = tuple(name for name, module in COMMANDS.items() if getattr(module, "RUN_DIR", False))
#: command -> (option naming its output file, options naming what it reads).
OUTPUT_FILES = {name: module.OUTPUT for name, module in COMMANDS.items() if hasattr(module, "OUTPUT")}

DESCRIPTION = """\
molgen: generative design of molecules and materials.

Examples:
  molgen demo                                   # sample, evaluate, optimise and report on the shipped prior
  molgen models                                 # shipped models, usable by name
  molgen sample zinc250k -n 1000 -o samples.smi
  molgen sample perov5 -n 100 -o crystals.csv
  molgen report runs/demo -o report.html
  molgen train --data nci-5k --max-minutes 3 --out runs/nci
  molgen train --data moses-train --limit 50000 --max-minutes 20 --out runs/moses
  molgen train --resume --max-minutes 30 --out runs/moses
  molgen sample runs/nci -n 1000 -o samples.smi
  molgen evaluate samples.smi --jobs 2 -o report.json
  molgen score samples.smi --objective pmo/osimertinib_mpo -o scores.csv
  molgen optimize --prior zinc250k --objective pmo/qed --budget 10000 --out runs/qed
  molgen optimize --resume --out runs/qed
  molgen export runs/qed --top 50 -o best.sdf
  molgen campaign new --generator zinc250k --budget 240 --out runs/lab
  molgen campaign ask runs/lab -n 24 -o batch.csv   # the lab fills value (or error) and returns the file
  molgen campaign tell runs/lab batch.csv
  molgen serve runs/lab --port 8000                 # the same over HTTP (pip install 'molgen[serve]')
  molgen fit-predictor --data esol --target logp --out runs/esol-mpnn
  molgen predict runs/esol-mpnn molecules.smi -o predictions.csv
  molgen datasets
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="molgen", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"molgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = module.add_parser(sub)
        if name in RUN_DIR_COMMANDS:
            command.add_argument("--overwrite", action="store_true",
                                 help="replace the run in --out (without it, an existing run is an error)")
        if getattr(module, "QUIET", False):
            command.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        if getattr(module, "PRECISION", False):
            command.add_argument("--precision", choices=PRECISIONS, default="auto",
                                 help="auto: bf16 autocast on CUDA, float32 on CPU (default); bf16; fp32")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``molgen`` script.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit code: 0 on success, 2 on a user error (printed as one line).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # e.g. for `train --nproc` to relaunch itself per rank
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    command = COMMANDS[args.command]
    handler = command.run
    if getattr(command, "PRECISION", False):
        handler = _with_precision(command.run)
    previous = _terminate_as_interrupt()
    try:
        _check_outputs(args)
        if args.command in RUN_DIR_COMMANDS and run_dir_owned_elsewhere(args.out):
            return handler(args)
        if args.command in RUN_DIR_COMMANDS:
            existed = Path(args.out).exists()
            if not getattr(args, "resume", False):
                prepare_run_dir(args.out, overwrite=args.overwrite, kind=args.command)
            elif args.overwrite:
                raise MolgenError("--resume and --overwrite contradict each other: choose one")
            try:
                with RunLock(args.out, f"molgen {args.command}"):
                    return handler(args)
            except MolgenError:
                if not existed:  # a command refused at its start leaves no empty run directory behind
                    _remove_if_empty(Path(args.out))
                raise
        return handler(args)
    except MolgenError as exc:
        print(f"molgen: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        resumable = getattr(command, "RESUMABLE", False)
        print("molgen: interrupted" + (" (a checkpoint was saved; continue with --resume)" if resumable else ""), file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _with_precision(run):
    """``run`` inside the autocast of ``--device``/``--precision`` (inference
    commands: nothing in them calls backward)."""
    def handler(args: argparse.Namespace) -> int:
        with autocast(getattr(args, "device", "cpu"), args.precision):
            return run(args)
    return handler


def _remove_if_empty(folder) -> None:
    """Delete ``folder`` if it holds nothing but a lock file."""
    try:
        if folder.is_dir() and all(p.name == LOCK_NAME for p in folder.iterdir()):
            (folder / LOCK_NAME).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output file that would replace an input,
    land in a model directory or a run's files, or cannot be written."""
    spec = OUTPUT_FILES.get(args.command)
    if spec is None or getattr(args, spec[0], None) is None:
        return
    check_output_file(getattr(args, spec[0]), inputs=[getattr(args, name, None) for name in spec[1]])


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: schedulers and `timeout` send it."""


def _terminate_as_interrupt():
    """Make SIGTERM raise like Ctrl-C, so every command saves what it has
    (checkpoints, the candidate store) the same way; returns the previous
    handler (None when signals cannot be set here, e.g. off the main thread)."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the checkpoint short
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

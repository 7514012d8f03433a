"""``python -m ddlkit``: the command line.

``run`` turns flags into an :class:`~ddlkit.config.Experiment`, runs it on real processes
and writes its record. Its flags are generated from the Experiment's fields, so a new field
gets a flag without touching this file (add a help line to ``FIELD_HELP``). Every setting is
checked before any process starts; a bad one exits with code 2 and names its flag.
Exit codes: 0 done, 1 a worker failed or the run timed out, 2 bad arguments, 130 Ctrl-C.

``grade ex03`` runs one exercise's checks against the learner's file (exit 0 when all
pass, 1 otherwise); ``exercises build`` regenerates ``exercises/`` from ``solutions/``;
``doctor`` prints the set-up check (exit 0 when every check passes, 1 otherwise).
``course DIR`` writes (or updates) a learner's course folder, ``lab [DIR]`` opens
JupyterLab on it (:mod:`ddlkit.tools.course`, :mod:`ddlkit.tools.lab`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ddlkit.config import (
    ALLREDUCE_IMPLS,
    BATCH_SPLITS,
    COMPRESSIONS,
    DTYPES,
    LR_SCALINGS,
    MODELS,
    OPTIMIZERS,
    WORKER_LOSS,
    Experiment,
)
from ddlkit.data.datasets import DATASETS
from ddlkit.data.sharding import SCHEMES
from ddlkit.errors import CheckpointError, ConfigError, RunTimeout, WorkerFailed
from ddlkit.modes import MODES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: allowed values of the string fields, from the modules that own them
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": tuple(MODES), "dataset": tuple(DATASETS), "sharding": tuple(SCHEMES),
    "model": tuple(MODELS), "optimizer": tuple(OPTIMIZERS),
    "allreduce_impl": tuple(ALLREDUCE_IMPLS), "dtype": tuple(DTYPES),
    "on_worker_loss": tuple(WORKER_LOSS), "compression": tuple(COMPRESSIONS),
    "batch_split": tuple(BATCH_SPLITS), "lr_scaling": tuple(LR_SCALINGS),
}

#: one line per field, with units; the default is appended from the dataclass
FIELD_HELP: dict[str, str] = {
    "mode": "training mode: " + "; ".join(f"{m.name} = {m.summary}" for m in MODES.values()),
    "workers": "number of worker processes (a parameter server adds one more process)",
    "dataset": "dataset to train on",
    "model": "model: a linear layer, an MLP with one hidden layer, a small CNN (digits only) "
             "or a character-level LSTM language model (text only)",
    "sharding": "how the training set is split across workers",
    "dirichlet_alpha": "Dirichlet concentration for --sharding dirichlet "
                       "(small = more skewed); a positive number",
    "classes_per_worker": "classes each worker sees with --sharding label-skew (count)",
    "size_ratio": "largest/smallest shard size with --sharding unbalanced (ratio ≥ 1)",
    "optimizer": "optimiser applied to the averaged gradient",
    "lr": "learning rate (step size, > 0)",
    "momentum": "momentum coefficient for --optimizer momentum (0 to 0.999)",
    "batch_size": "per-worker batch size (samples per step)",
    "steps": "training steps per worker (synchronous rounds; async: steps × workers updates)",
    "hidden": "hidden units of the MLP or the LSTM; features the CNN's convolutions pass to "
              "its last layer (count)",
    "seed": "random seed for data split, sharding and initial weights",
    "eval_every": "evaluate on the test set every this many steps",
    "worker_delays": "extra seconds each worker sleeps per step, comma-separated, one per "
                     "worker (e.g. 0,0,0.05 makes worker 2 a straggler)",
    "allreduce_impl": "all-reduce used by --mode allreduce and local-sgd: the hand-written ring "
                      "(bandwidth-optimal), recursive doubling (latency-optimal) or gloo's",
    "dtype": "floating-point type of parameters and data",
    "timeout_s": "stop the run if it takes longer than this (seconds)",
    "unresponsive_s": "end the run when a worker process sends no heartbeat for this long "
                      "(seconds): it is frozen (stopped, swapping), not just slow",
    "faults": "planned faults, comma-separated: kill:RANK@STEP, drop:RANK@STEP, "
              "delay:RANK@STEP=SECONDS (e.g. kill:2@30)",
    "on_worker_loss": "what a parameter server does when a worker is lost: fail, continue, "
                      "or auto (async continues, sync fails)",
    "checkpoint_every": "save a checkpoint every this many steps into the record folder "
                        "(0 = never); resume with --resume-from",
    "staleness_bound": "--mode ssp: how many steps a worker may run ahead of the slowest "
                       "(0 = sync; inf, or ≥ --steps, = async)",
    "local_steps": "--mode local-sgd: local steps between model averages (H; 1 = all-reduce)",
    "compression": "gradient compression (modes sync and allreduce): none, topk or qsgd",
    "compress_ratio": "--compression topk: fraction of gradient entries sent (0 < k ≤ 1)",
    "error_feedback": "--compression topk: keep what was not sent and add it next step",
    "quant_bits": "--compression qsgd: bits per quantised entry, sign included (2 to 16)",
    "backup_workers": "--mode sync: the server steps with the first N−b gradients (b)",
    "random_delay_s": "mean of a seeded random extra delay per worker step (seconds)",
    "batch_split": "how the global batch is split: by shard size, or by worker speed",
    "net_latency_ms": "emulated network latency per message (ms; 0 = none)",
    "net_bandwidth_mbps": "emulated network bandwidth (Mbit/s; 0 = unlimited)",
    "lr_scaling": "none, or linear: lr × workers (Goyal et al. 2017)",
    "warmup_steps": "--lr-scaling linear: steps of linear warm-up from lr to lr × workers",
}


def flag(field: str) -> str:
    """The command-line flag of an Experiment field: ``batch_size`` → ``--batch-size``."""
    return "--" + field.replace("_", "-")


# -- argument types: messages say what was expected, argparse adds the flag ------------
def _int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float_arg(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _bound_arg(text: str) -> int | None:
    """A whole number, or ``inf`` (``∞``) for no bound: None."""
    if text.strip().lower() in ("inf", "∞"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or inf") from None


def _seconds_list_arg(text: str) -> tuple[float, ...]:
    if not text.strip():
        return ()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of seconds, e.g. 0,0,0.05") from None


def _spec_list_arg(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


_TYPES: dict[str, Callable[[str], Any]] = {
    "int": _int_arg, "int | None": _bound_arg, "float": _float_arg,
    "tuple[float, ...]": _seconds_list_arg, "tuple[str, ...]": _spec_list_arg,
}


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field[Any]) -> None:
    """Add the flag for one Experiment field; a flag not given leaves no attribute, so a
    value given as ``inf`` (None) still counts as given."""
    default = Experiment().to_dict()[f.name]
    shown = "none" if default == [] else default
    text = f"{FIELD_HELP.get(f.name, f'Experiment.{f.name}')} (default: {shown})"
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
    if f.name in FIELD_CHOICES:
        kwargs["choices"] = FIELD_CHOICES[f.name]
    elif f.type == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif f.type in _TYPES:
        kwargs["type"] = _TYPES[f.type]
        kwargs["metavar"] = {"int": "N", "int | None": "N|inf", "float": "X",
                             "tuple[str, ...]": "SPEC,..."}.get(f.type, "S,S,...")
    elif f.type != "str":
        raise TypeError(f"Experiment.{f.name} has type {f.type}; teach ddlkit.cli to parse it")
    parser.add_argument(flag(f.name), **kwargs)


# -- the parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each subcommand adds itself and sets ``handler``."""
    from ddlkit import __version__

    parser = argparse.ArgumentParser(
        prog="python -m ddlkit", description="ddlkit: distributed deep learning on real "
        "processes over torch.distributed (gloo).", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"ddlkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(commands)
    _add_grade_parser(commands)
    _add_exercises_parser(commands)
    _add_doctor_parser(commands)
    _add_course_parser(commands)
    _add_lab_parser(commands)
    return parser


def _add_run_parser(commands: Any) -> None:
    p = commands.add_parser(
        "run", help="run one experiment and save its record",
        description="Run one experiment on real worker processes and save record.json. "
        "Every flag sets the Experiment field of the same name.",
        epilog="example: python -m ddlkit run --mode async --workers 3 --dataset iris "
               "--worker-delays 0,0,0.05", allow_abbrev=False)
    exp = p.add_argument_group("experiment")
    for f in dataclasses.fields(Experiment):
        _add_field(exp, f)
    out = p.add_argument_group("output")
    out.add_argument("--config", metavar="FILE.json", help="start from this Experiment dict "
                     "(or a record.json); flags given explicitly override it (default: none)")
    out.add_argument("--out", metavar="DIR", help="directory for record.json (default: "
                     "runs/<mode>-<workers>w-<YYYYmmdd-HHMMSS>)")
    out.add_argument("--quiet", action="store_true", help="no progress bar (default: show it)")
    out.add_argument("--resume-from", metavar="DIR", help="continue the interrupted run whose "
                     "record folder is DIR from its last checkpoint (default: a fresh start)")
    p.set_defaults(handler=_cmd_run, parser=p)


def _add_grade_parser(commands: Any) -> None:
    p = commands.add_parser(
        "grade", help="grade one exercise and print the verdict",
        description="Run one exercise's checks against your file and print the verdict: "
        "all passed, not implemented yet, or the first failing check and why. "
        "Exit code 0 when every check passes, 1 otherwise.",
        epilog="example: python -m ddlkit grade ex04 --dir solutions", allow_abbrev=False)
    p.add_argument("exercise", help="which exercise, e.g. ex04 (or just its number)")
    p.add_argument("--dir", metavar="DIR", dest="directory",
                   help="folder holding the exercise file: exercises, solutions or any path "
                        "(default: the current folder if it holds the file, else exercises/ "
                        "here or in a folder above, as in a course folder)")
    p.set_defaults(handler=_cmd_grade, parser=p)


def _add_exercises_parser(commands: Any) -> None:
    p = commands.add_parser(
        "exercises", help="list the exercises, or regenerate exercises/ from solutions/",
        description="Manage the exercises.", allow_abbrev=False)
    actions = p.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build", help="regenerate exercises/ from solutions/",
        description="Write every exercise file generated from the solutions: each "
        "# BEGIN SOLUTION ... # END SOLUTION region becomes a stub that raises "
        "NotImplementedError, notebooks lose their outputs. A generated file you have "
        "changed since is kept, unless --force.", allow_abbrev=False)
    build.add_argument("--source", metavar="DIR", default="solutions",
                       help="folder of solution files (default: solutions)")
    build.add_argument("--out", metavar="DIR", default="exercises",
                       help="folder to write the exercises to (default: exercises)")
    build.add_argument("--force", action="store_true",
                       help="also overwrite files changed since they were generated")
    build.set_defaults(handler=_cmd_exercises_build, parser=build)
    listing = actions.add_parser("list", help="list the exercises", allow_abbrev=False)
    listing.set_defaults(handler=_cmd_exercises_list, parser=listing)


def _add_doctor_parser(commands: Any) -> None:
    p = commands.add_parser(
        "doctor", help="check that this machine can run the course",
        description="Run the set-up check: the platform, Python, torch, gloo, the worker "
        "start method, a free port, real workers that talk and train, and nothing left "
        "running. Each failed check says what to do. Exit code 0 when every check passes, "
        "1 otherwise.", epilog="example: ddlkit doctor --workers 4", allow_abbrev=False)
    p.add_argument("--workers", type=_int_arg, default=2, metavar="N",
                   help="worker processes the checks start, 1 to 16 (default: 2)")
    p.set_defaults(handler=_cmd_doctor, parser=p)


_COURSE_DIR_HELP = ("the course folder (default: the current folder if it holds a course, "
                    "else ./ddlkit-course)")


def _add_course_parser(commands: Any) -> None:
    p = commands.add_parser(
        "course", help="write the course (notebooks, exercises, glossary) into a folder",
        description="Write the course into DIR: notebooks/, exercises/ (your copy, to fill "
        "in) and docs/glossary.md. Run it again after upgrading ddlkit: it adds new files "
        "and updates those you have not changed; a file you changed is never overwritten "
        "(it is listed as kept, with the reason).",
        epilog="example: python -m ddlkit course ~/ddlkit-course", allow_abbrev=False)
    p.add_argument("folder", nargs="?", metavar="DIR", help=_COURSE_DIR_HELP)
    p.set_defaults(handler=_cmd_course, parser=p)


def _add_lab_parser(commands: Any) -> None:
    p = commands.add_parser(
        "lab", help="open JupyterLab on the course (writes the course first if needed)",
        description="Open JupyterLab on the course folder DIR, at notebooks/00_welcome.ipynb, "
        "listening on 127.0.0.1 only. If DIR holds no course yet, it is written first.",
        epilog="example: python -m ddlkit lab ~/ddlkit-course --port 8899", allow_abbrev=False)
    p.add_argument("folder", nargs="?", metavar="DIR", help=_COURSE_DIR_HELP)
    p.add_argument("--port", type=_int_arg, metavar="N",
                   help="port to listen on (default: JupyterLab's, 8888 or the next free one)")
    p.add_argument("--no-browser", dest="browser", action="store_false",
                   help="do not open a browser; open the printed URL yourself")
    p.set_defaults(handler=_cmd_lab, parser=p)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m ddlkit`` and the ``ddlkit`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


# -- run ------------------------------------------------------------------------------------
def experiment_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Experiment:
    """Build the Experiment from ``--config`` and the flags; any problem is a usage error."""
    names = [f.name for f in dataclasses.fields(Experiment)]
    given = {n: getattr(args, n) for n in names if hasattr(args, n)}
    data: dict[str, Any] = {}
    if args.config is not None:
        data = _read_config(args.config, parser)
    data.update(given)
    try:
        return Experiment.from_dict(data)
    except ConfigError as err:
        if err.field not in names:  # an unknown key can only come from the file
            parser.error(f"argument --config: {args.config}: unknown field {err.field!r} "
                         f"({err.allowed})")
        where = ""  # say where a value the user did not type came from
        if err.field not in given:
            where = f" (set in {args.config})" if err.field in data else " (default)"
        parser.error(f"argument {flag(err.field)}{where}: {_show(err.value)} is not allowed: "
                     f"{err.allowed}")


def _read_config(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        parser.error(f"argument --config: cannot read {path!r}: {err.strerror or err}")
    except ValueError as err:
        parser.error(f"argument --config: {path!r} is not valid JSON: {err}")
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "format" in data:
        data = data["config"]  # a record.json: re-run its experiment
    if not isinstance(data, dict):
        parser.error(f"argument --config: {path!r} must hold a JSON object of Experiment "
                     f"fields, not {type(data).__name__}")
    return data


def _show(value: Any) -> str:
    """A value as it would be typed: ``0,0.5`` for delays, ``nan``, ``'label-skew'``."""
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value) or "''"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def default_out(exp: Experiment) -> Path:
    """``runs/<mode>-<workers>w-<timestamp>``, with a suffix if that directory exists."""
    base = Path("runs") / f"{exp.mode}-{exp.workers}w-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


class ProgressBar:
    """A tqdm bar on stderr, moved by Progress events, showing the latest test metrics.

    It reads "starting" until the first step is reported, then restarts its clock, so the
    steps/s rate leaves out process start-up (seconds on a first run: workers import torch).
    """

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="step", file=sys.stderr, disable=quiet,
                        dynamic_ncols=True, desc="starting")
        self.started = False

    def __call__(self, event: Any) -> None:
        from ddlkit.runtime.live import EvalPoint, Progress

        if isinstance(event, Progress):
            if not self.started:
                self.started = True
                self.bar.set_description_str("training", refresh=False)
                self.bar.reset(total=event.total)
            if event.step > self.bar.n:
                self.bar.update(event.step - self.bar.n)
        elif isinstance(event, EvalPoint):
            row = event.row
            shown = {"test_loss": row.get("test_loss"), "acc": row.get("accuracy")}
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items() if v is not None})

    def close(self) -> None:
        self.bar.close()


def _cmd_run(args: argparse.Namespace) -> int:
    exp = experiment_from_args(args, args.parser)
    out = Path(args.out) if args.out else default_out(exp)
    record = out / "record.json"
    from ddlkit.runtime import run  # imports torch: only once the arguments are known good

    bar = ProgressBar(exp.steps, args.quiet)
    try:
        result = run(exp, on_event=bar, record_dir=out, resume_from=args.resume_from)
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:  # before any start
        bar.close()
        args.parser.error(str(exc))
    except (WorkerFailed, RunTimeout) as exc:
        bar.close()
        hint = f"; try a larger --timeout-s than {exp.timeout_s:g}" if isinstance(
            exc, RunTimeout) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        print(f"partial record: {_record_path(exc.result, record)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted; partial record at {record}", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()
    print(result.summary())
    print(f"record: {_record_path(result, record)}")
    return EXIT_OK


def _record_path(result: Any, fallback: Path) -> str:
    if result is not None and result.meta.get("record"):
        return str(result.meta["record"])
    return str(fallback)


# -- grade and exercises -----------------------------------------------------------------------
def _cmd_grade(args: argparse.Namespace) -> int:
    from ddlkit.exercises import get_exercise, grade  # imports torch

    try:
        get_exercise(args.exercise)
    except ValueError as err:
        args.parser.error(f"argument exercise: {err}")
    verdict = grade(args.exercise, args.directory)
    print(repr(verdict))
    return EXIT_OK if verdict.passed else EXIT_FAILED


def _cmd_exercises_build(args: argparse.Namespace) -> int:
    from ddlkit.exercises.build import BuildError, build

    try:
        report = build(args.source, args.out, force=args.force)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    for name in report.written:
        print(f"wrote   {Path(args.out) / name}")
    for name in report.removed:
        print(f"removed {Path(args.out) / name}")
    print(f"{len(report.written)} written, {len(report.unchanged)} unchanged"
          + (f", {len(report.removed)} removed" if report.removed else ""))
    if report.kept:
        for name in report.kept:
            print(f"kept {Path(args.out) / name}: changed since it was generated "
                  "(someone's work?); --force overwrites it", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_exercises_list(args: argparse.Namespace) -> int:
    from ddlkit.exercises import all_exercises

    for ex in all_exercises():
        print(f"{ex.key}  {ex.filename:<28} {ex.title}")
    return EXIT_OK


# -- doctor ----------------------------------------------------------------------------------
def _cmd_doctor(args: argparse.Namespace) -> int:
    from ddlkit.tools.doctor import check  # imports torch

    if not 1 <= args.workers <= 16:
        args.parser.error(f"argument --workers: {args.workers} is not allowed: "
                          "a whole number from 1 to 16")
    report = check(workers=args.workers)
    encoding = sys.stdout.encoding or "utf-8"  # a Windows pipe may not take ✓ or →
    print(str(report).encode(encoding, errors="replace").decode(encoding))
    return EXIT_OK if report.ok else EXIT_FAILED


# -- course and lab ----------------------------------------------------------------------------
def _cmd_course(args: argparse.Namespace) -> int:
    from ddlkit.tools.course import CourseError, default_folder, write_course

    folder = Path(args.folder) if args.folder else default_folder()
    try:
        report = write_course(folder)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    _print_course_report(report)
    return EXIT_OK


def _print_course_report(report: Any, next_step: bool = True) -> None:
    """What ``write_course`` did: new files counted on a fresh folder, else listed; every
    updated and every kept file by name, a kept one with the reason."""
    folder = report.folder
    if report.fresh:
        by_top: dict[str, int] = {}
        for path in report.added:
            top = path.split("/")[0]
            by_top[top] = by_top.get(top, 0) + 1
        parts = ", ".join(f"{n} in {top}/" for top, n in sorted(by_top.items()))
        print(f"wrote the course into {folder}: {parts}")
    else:
        for path in report.added:
            print(f"added   {path}")
    for path in report.updated:
        print(f"updated {path}")
    for kept in report.kept:
        print(f"kept    {kept.path}: {kept.reason}")
    if not report.fresh:
        print(f"{folder}: {len(report.added)} added, {len(report.updated)} updated, "
              f"{len(report.unchanged)} unchanged, {len(report.kept)} kept")
    if report.kept:
        print("ddlkit never overwrites your files; to get the new version of a kept file, "
              "rename it and run this command again")
    if next_step:
        print(f"open it with: python -m ddlkit lab {_quoted(folder)}")


def _quoted(path: Path) -> str:
    return shlex.quote(str(path))


def _cmd_lab(args: argparse.Namespace) -> int:
    from ddlkit.tools import lab
    from ddlkit.tools.course import CourseError, default_folder, has_course, write_course

    problem = lab.jupyterlab_missing()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    folder = (Path(args.folder) if args.folder else default_folder()).expanduser().absolute()
    if not has_course(folder):
        print(f"{folder} holds no course yet: writing it first")
        try:
            report = write_course(folder)
        except CourseError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_FAILED
        _print_course_report(report, next_step=False)
    print(f"opening JupyterLab on {folder} (Ctrl-C stops it)")
    return lab.launch(lab.lab_argv(folder, port=args.port, browser=args.browser))

"""Grading the exercises so that an instructor can trust the marks.

``python -m tutorial_lib grade ASSIGNMENT`` autogrades every submission of ASSIGNMENT with
nbgrader (run from the course folder): each notebook runs in a sandbox (:mod:`.sandbox`:
bubblewrap, no network, the package and the system read-only, the course invisible, a
private home, limits of memory and time), and each task is graded by the grader itself
against the learner's code running alone in its own sandboxed process (:mod:`.autograde`,
:mod:`.remote`, :mod:`.worker`): only plain data crosses (:mod:`.wire`). Without a working
bubblewrap it refuses to start unless given ``--unsandboxed``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

UNSANDBOXED_RISK = (
    "--unsandboxed: the learners' code will run with YOUR rights, with your network, and can "
    "read and write whatever you can (your files, the course folder, the gradebook, the "
    "installed package). Grade this way only submissions you trust."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib grade",
        description="Autograde every submission of ASSIGNMENT with nbgrader, each in a "
        "sandbox. Run it in the course folder (the one with nbgrader_config.py).",
    )
    parser.add_argument("assignment", help="e.g. 03_gan")
    parser.add_argument("--student", default=None, help="grade this student only")
    parser.add_argument(
        "--course", type=Path, default=Path("."), help="the course folder (default: here)"
    )
    parser.add_argument("--memory-mb", type=int, default=8192, help="per process (default 8192)")
    parser.add_argument(
        "--cell-timeout", type=int, default=120, help="seconds per cell and per check call"
    )
    parser.add_argument("--submission-timeout", type=int, default=1800, help="seconds per notebook")
    parser.add_argument(
        "--checks-only",
        action="store_true",
        help="grade the tasks without running each notebook top to bottom (faster; the "
        "feedback then shows the checks' verdicts but none of the notebook's own outputs)",
    )
    parser.add_argument(
        "--unsandboxed", action="store_true", help="no bubblewrap on this machine: see the risk"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        print('error: nbgrader is not installed: pip install -e ".[instructor]"', file=sys.stderr)
        return 1
    from tutorial_lib.grading import autograde, sandbox

    course = options.course.resolve()
    if not (course / "nbgrader_config.py").is_file():
        print(
            f"error: {course} has no nbgrader_config.py: run this in the course folder (or "
            "pass --course DIR); `python -m tutorial_lib.course.notebook_tools course DIR` makes one.",
            file=sys.stderr,
        )
        return 1
    if options.unsandboxed:
        print(f"warning: {UNSANDBOXED_RISK}", file=sys.stderr)
    else:
        try:
            path, version = sandbox.find_bwrap()
        except sandbox.SandboxUnavailable as error:
            print(f"error: refusing to grade: {error}", file=sys.stderr)
            return 1
        print(
            f"grading {options.assignment} in bubblewrap {'.'.join(map(str, version))} "
            f"({path}): no network, {options.memory_mb} MiB, {options.cell_timeout} s per cell",
            file=sys.stderr,
        )
    return autograde.autograde(
        autograde.autograde_argv(options.assignment, course, options), course
    )

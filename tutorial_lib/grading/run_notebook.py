"""Run a submission's notebook inside the sandbox: ``python .../run_notebook.py IN OUT
CELL_TIMEOUT``, started by its path, so that this process imports neither the package nor
TensorFlow (the notebook's kernel does). nbgrader's own ``Execute`` preprocessor runs it,
each cell limited to CELL_TIMEOUT seconds, errors recorded and the run going on. The grader
reads OUT back as JSON, for the feedback only; no test cell's output counts."""

from __future__ import annotations

import sys

import nbformat


def main(argv: list[str] | None = None) -> int:
    source, target, timeout = sys.argv[1:] if argv is None else argv
    from nbgrader.preprocessors import Execute

    nb = nbformat.read(source, as_version=4)
    executor = Execute(timeout=int(timeout))
    try:
        nb, _ = executor.preprocess(nb, {"metadata": {"path": "."}})
    finally:
        nbformat.write(nb, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

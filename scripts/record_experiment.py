"""Record one or more experiments of a lesson into the shipped store, without recording
the whole lesson again.

``python -m tutorial_lib pretrain`` records a lesson from scratch (every model, every
experiment, the spread over seeds). When a lesson gains one experiment, this script adds
just that one::

    TUTORIAL_PROFILE=cpu python scripts/record_experiment.py notebooks/02_vae.ipynb seed_kl_mistakes

It executes the lesson's code cells in order, up to the last cell that names one of the
KEYS, with the switch on "load" (every run and every other experiment comes from the
store, as with ``PRETRAINED = True``); the experiments named by KEYS are computed, written
into the lesson's ``record.json`` (and ``arrays.npz``) as ``pretrain`` writes them, and
the checksum lines of the files it changed are renewed in ``SHA256SUMS``. The lesson's
timings in ``lessons.json`` are left as they were.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def record(notebook: Path, keys: set[str]) -> list[str]:
    """Run ``notebook`` with its stored results and compute the experiments ``keys`` into
    the store; the store files it changed (paths relative to the profile's folder)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["TUTORIAL_PRETRAINED"] = "1"
    from tutorial_lib import checkpoints

    load = checkpoints.Lesson.experiment
    folders = set()

    def experiment(self, key, compute):
        if key not in keys:
            return load(self, key, compute)
        start = time.perf_counter()
        results = compute()
        print(f"{self.name}: {key} computed in {time.perf_counter() - start:.0f} s", flush=True)
        arrays: dict = {}
        self.record["experiments"][key] = checkpoints._to_json(results, self.folder, arrays, key)
        self._save_arrays(arrays)
        self._save_record()
        folders.add(self.folder)
        keys_done.add(key)
        return results

    keys_done: set[str] = set()
    checkpoints.Lesson.experiment = experiment
    cells = [
        "".join(cell["source"])
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        if cell["cell_type"] == "code"
    ]
    last = max(i for i, source in enumerate(cells) if any(f'"{k}"' in source for k in keys))
    scope = {"__name__": "__main__"}
    for source in cells[: last + 1]:
        exec(compile(source, str(notebook), "exec"), scope)  # noqa: S102 (the lesson's own code)
    if keys_done != keys:
        raise SystemExit(f"not computed: {', '.join(sorted(keys - keys_done))}")
    return renew_checksums(folders)


def renew_checksums(folders: set[Path]) -> list[str]:
    """Renew the ``SHA256SUMS`` lines of every file in ``folders`` (one profile's
    lessons), leaving every other line as it is; the files renewed."""
    from tutorial_lib import checkpoints

    store = next(iter(folders)).parent
    sums = store / checkpoints.CHECKSUMS_FILE
    lines = dict(reversed(line.split("  ", 1)) for line in sums.read_text().splitlines() if line)
    changed = {
        path.relative_to(store).as_posix(): checkpoints.sha256(path)
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    lines.update(changed)
    sums.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(lines.items())))
    return sorted(changed)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    renewed = record(Path(argv[0]), set(argv[1:]))
    print("checksums renewed:", ", ".join(renewed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

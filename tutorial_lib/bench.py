"""``python -m tutorial_lib bench``: every model family, measured the same way.

For each family (or those named with ``--models``) the benchmark

1. trains it under the profile with its own ``train_run`` (the CLI's), which
   reports training seconds and its likelihood or reconstruction numbers;
2. for image generators, draws ``profile.eval_samples`` images, timing them,
   and scores them with :func:`tutorial_lib.metrics.image_quality`;
3. trains the matching seed recipe (:mod:`tutorial_lib.baselines`) for the
   same number of seconds on the same machine, and scores it the same way;
4. writes ``bench.md`` (a Markdown table) and ``bench.json`` to ``--out``.

Timings are only comparable within one run on one machine: the table gives
each family's training throughput as a ratio to its seed recipe's.
"""

from __future__ import annotations

import datetime
import json
import platform
import time
from pathlib import Path

import numpy as np

from tutorial_lib import metrics
from tutorial_lib.baselines import SEED_RECIPES
from tutorial_lib.profiles import Profile

# Families whose sample_run returns images (the others are scored by train_run alone).
IMAGE_GENERATORS = ("vae", "gan", "wgan_gp", "cgan", "diffusion")

# Numbers of train_run's metrics that the table shows, when a family reports them.
HEADLINE_KEYS = {
    "test_mse": "test MSE",
    "test_negative_elbo": "test -ELBO (nats)",
    "val_loss": "val loss (nats/char)",
    "val_bits_per_character": "val bits/char",
}
THROUGHPUT_KEYS = ("train_images_per_second", "train_tokens_per_second")


QUALITY_KEYS = ("confidence", "coverage", "inception_score", "frechet_distance")


def _quality(samples: np.ndarray, dataset: str) -> dict:
    quality = metrics.image_quality(samples, dataset)
    return {k: quality[k] for k in QUALITY_KEYS}


def bench_family(name: str, family, *, dataset: str, profile: Profile, out_dir: Path) -> dict:
    """Train, sample and evaluate one family; one result row."""
    run = family.train_run(name, dataset=dataset, profile=profile, out_dir=out_dir / name, seed=0)
    # A family that trains on data of its own (the transformer: text) says which.
    row = {
        "model": name,
        "dataset": run.get("dataset", dataset),
        "train_seconds": run["train_seconds"],
    }
    row.update({k: run[k] for k in (*THROUGHPUT_KEYS, *HEADLINE_KEYS) if k in run})
    if name in IMAGE_GENERATORS:
        start = time.perf_counter()
        samples = family.sample_run(name, run_dir=out_dir / name, num=profile.eval_samples, seed=1)
        row["sample_images_per_second"] = round(len(samples) / (time.perf_counter() - start), 1)
        row.update(_quality(samples, dataset))
    return row


def bench_seed_recipe(name: str, ours: dict, *, dataset: str, profile: Profile) -> dict:
    """Train the seed recipe matching ``name`` for as long as ours trained; one row."""
    label, train = SEED_RECIPES[name]
    result = train(dataset, profile, ours["train_seconds"])
    samples = result.pop("samples", None)
    row = {"model": label, "dataset": dataset, **result}
    if samples is not None:
        row.update(_quality(samples, dataset))
    row["baseline_for"] = name
    if "train_images_per_second" in ours:  # a ratio only where both throughputs were measured
        ratio = ours["train_images_per_second"] / max(row["train_images_per_second"], 1e-9)
        ours["speed_ratio_vs_seed"] = round(ratio, 2)
    return row


def run_bench(
    profile: Profile,
    *,
    models: list[str] | None = None,
    dataset: str = "mnist",
    out_dir: str | Path = "bench",
) -> list[dict]:
    """Benchmark ``models`` (default: every family of the CLI); write bench.md and bench.json."""
    from tutorial_lib import device
    from tutorial_lib.cli import MODEL_FAMILIES, _family

    out_dir = Path(out_dir)
    models = models or list(MODEL_FAMILIES)
    unknown = [m for m in models if m not in MODEL_FAMILIES]
    if unknown:
        raise ValueError(f"Unknown models {unknown}; choose from {', '.join(MODEL_FAMILIES)}.")
    device.setup(profile)
    rows = []
    for name in models:
        ours = bench_family(
            name, _family(name), dataset=dataset, profile=profile, out_dir=out_dir / "runs"
        )
        rows.append(ours)
        if name in SEED_RECIPES:
            rows.append(bench_seed_recipe(name, ours, dataset=dataset, profile=profile))
    report = {
        "date": datetime.date.today().isoformat(),
        "profile": profile.name,
        "machine": machine_description(),
        "floor": _quality_floor(dataset, profile),
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "bench.md").write_text(markdown_report(report))
    return rows


def _quality_floor(dataset: str, profile: Profile) -> dict:
    """Real training images scored like samples: the best reachable numbers."""
    n = max(metrics.MIN_FD_SAMPLES, profile.eval_samples)
    floor = metrics.real_data_floor(dataset, n)
    return {"num_images": n, **{k: floor[k] for k in QUALITY_KEYS}}


def machine_description() -> str:
    """CPU model, core count and GPUs, in one line."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    from tutorial_lib.device import gpu_names

    gpus = gpu_names()
    return f"{cpu}, {os.cpu_count()} cores" + (f", GPUs: {', '.join(gpus)}" if gpus else ", no GPU")


COLUMNS = [
    ("model", "model"),
    ("dataset", "data"),
    ("train_seconds", "train s"),
    ("train_images_per_second", "train img/s"),
    ("train_tokens_per_second", "train tokens/s"),
    ("speed_ratio_vs_seed", "speed vs seed"),
    ("sample_images_per_second", "sample img/s"),
    *HEADLINE_KEYS.items(),
    ("confidence", "confidence"),
    ("coverage", "coverage"),
    ("inception_score", "IS"),
    ("frechet_distance", "FD"),
]


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_report(report: dict) -> str:
    """The benchmark as Markdown: a header line, the table, and the real-data floor."""
    rows = report["rows"]
    used = [(k, title) for k, title in COLUMNS if any(k in row for row in rows)]
    lines = [
        f"Benchmark, profile `{report['profile']}`, {report['date']}, on {report['machine']}.",
        "",
        "| " + " | ".join(title for _, title in used) + " |",
        "|" + "---|" * len(used),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k)) for k, _ in used) + " |")
    floor = report["floor"]
    lines += [
        "",
        f"Real-data floor ({floor['num_images']} training images vs the test set): "
        f"confidence {floor['confidence']:.3f}, coverage {floor['coverage']:.1f}, "
        f"IS {floor['inception_score']:.2f}, FD {floor['frechet_distance']:.2f}.",
        "Seed recipes train for the same seconds as the model above them; "
        "'speed vs seed' is the ratio of training throughputs.",
        "",
    ]
    return "\n".join(lines)

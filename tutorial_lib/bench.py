"""``python -m tutorial_lib bench``: every model family, measured the same way.

For each family (or those named with ``--models``) the benchmark

1. trains it under the profile through the life cycle the CLI and the
   notebooks use (:func:`tutorial_lib.runs.train`), which records training
   seconds, throughput, the family's likelihood or reconstruction numbers, and
   for image models the timed samples' quality
   (:func:`tutorial_lib.metrics.image_quality`);
2. trains the family's seed recipe (:mod:`tutorial_lib.baselines`, named by the
   registry, :mod:`tutorial_lib.families`) for the same number of seconds on the
   same machine, and scores it the same way;
3. writes ``bench.md`` (a Markdown table) and ``bench.json`` to ``--out``.

A lesson's recommended recipe (a family that ``improves`` on a textbook model,
:mod:`tutorial_lib.families`) is listed after its textbook model, and every image
model's Fréchet distance stands beside its training minutes: what the quality
cost in time.

Timings are only comparable within one run on one machine: the table gives
each family's training throughput as a ratio to its seed recipe's.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from tutorial_lib import device, families, metrics, runs
from tutorial_lib.baselines import SEED_RECIPES
from tutorial_lib.profiles import Profile

QUALITY_KEYS = ("confidence", "coverage", "inception_score", "frechet_distance")


def _quality(samples, dataset: str) -> dict:
    quality = metrics.image_quality(samples, dataset)
    return {k: quality[k] for k in QUALITY_KEYS}


def table_row(record: dict, family: families.Family | None = None) -> dict:
    """One row of the table from a run's record and its family (or a seed recipe's
    numbers, which sample images and report no likelihood)."""
    row = {k: record.get(k) for k in ("model", "dataset", "train_seconds", *QUALITY_KEYS)}
    data_model = family.data_model if family else None
    if data_model == "binary pixels" and row["dataset"]:  # its likelihood's data model
        row["dataset"] = f"{row['dataset']} ({record['config']['binarization']} binary)"
    if record.get("frechet_distance") is not None and record.get("train_seconds"):
        row["train_minutes"] = round(record["train_seconds"] / 60.0, 2)
    for key in ("train_images_per_second", "train_tokens_per_second", "test_mse"):
        row[key] = record.get(key)
    if (family is None or family.samples == "images") and record.get("sample_seconds_per_item"):
        row["sample_images_per_second"] = round(1.0 / record["sample_seconds_per_item"], 1)
    likelihood = family.likelihood if family and record.get("nll") is not None else "none"
    if likelihood == "bound":
        row["test_negative_elbo"] = record["nll"]
    elif likelihood == "exact" and data_model == "binary pixels":  # PixelCNN
        row["test_exact_nll"] = record["nll"]
    elif likelihood == "exact" and data_model == "dequantized pixels":  # a flow
        row["test_bits_per_dim"] = record["bits_per_dim"]
    elif likelihood == "exact" and data_model == "characters":
        row["val_loss"], row["val_bits_per_character"] = record["nll"], record["bits_per_dim"]
    return {k: v for k, v in row.items() if v is not None}


def bench_family(name: str, *, dataset: str, profile: Profile, out_dir: Path) -> dict:
    """Train, sample and evaluate one family through the life cycle; its table row."""
    family = families.get(name)
    run = runs.train(
        name,
        profile,
        dataset=dataset if dataset in family.datasets else None,
        out_dir=out_dir / name,
    )
    row = table_row(run.record, family)
    return {**row, "train_examples": getattr(run.config, "train_examples", None)}


def bench_seed_recipe(
    family: families.Family, ours: dict, *, dataset: str, profile: Profile
) -> dict:
    """Train the family's seed recipe for as long as ours trained, on the same images; one row."""
    label, train = SEED_RECIPES[family.seed_recipe]
    result = train(dataset, profile, ours["train_seconds"], ours.get("train_examples"))
    samples = result.pop("samples", None)
    row = table_row({"model": label, "dataset": dataset, **result})
    if samples is not None:
        row.update(_quality(samples, dataset))
    row["baseline_for"] = family.name
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
    """Benchmark ``models`` (default: every family); write bench.md and bench.json."""
    out_dir = Path(out_dir)
    models = _ordered(models or families.names())
    device.setup(profile)
    rows = []
    for name in models:
        ours = bench_family(name, dataset=dataset, profile=profile, out_dir=out_dir / "runs")
        rows.append(ours)
        family = families.get(name)
        if family.seed_recipe is not None:
            rows.append(bench_seed_recipe(family, ours, dataset=dataset, profile=profile))
        ours.pop("train_examples", None)
        if family.improves is not None:
            ours["improves"] = family.improves
    result = report(rows, profile, dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "bench.md").write_text(markdown_report(result))
    return rows


def report(rows: list[dict], profile: Profile, dataset: str) -> dict:
    """The benchmark's rows with the date, the machine and the real-data floor."""
    return {
        "date": datetime.date.today().isoformat(),
        "profile": profile.name,
        "machine": device.machine_description(),
        "floor": _quality_floor(dataset, profile),
        "rows": rows,
    }


def _ordered(models: list[str]) -> list[str]:
    """``models`` with each recommended recipe right after the textbook model it improves
    (when both are benchmarked); an unknown name fails before anything trains."""
    for name in models:
        families.get(name)
    ordered = [name for name in models if families.get(name).improves not in models]
    for recipe in [name for name in models if name not in ordered]:
        textbook = families.get(recipe).improves
        position = ordered.index(textbook) + 1
        while position < len(ordered) and families.get(ordered[position]).improves == textbook:
            position += 1
        ordered.insert(position, recipe)
    return ordered


def _quality_floor(dataset: str, profile: Profile) -> dict:
    """Real training images scored like samples: the best reachable numbers."""
    n = max(metrics.MIN_FD_SAMPLES, profile.eval_samples)
    floor = metrics.real_data_floor(dataset, n)
    return {"num_images": n, **{k: floor[k] for k in QUALITY_KEYS}}


COLUMNS = [
    ("model", "model"),
    ("dataset", "data"),
    ("train_seconds", "train s"),
    ("train_images_per_second", "train img/s"),
    ("train_tokens_per_second", "train tokens/s"),
    ("speed_ratio_vs_seed", "speed vs seed"),
    ("sample_images_per_second", "sample img/s"),
    ("test_mse", "test MSE"),
    ("test_negative_elbo", "test -ELBO (nats)"),
    ("test_exact_nll", "test NLL, binary (nats)"),
    ("test_bits_per_dim", "test bits/dim"),
    ("val_loss", "val loss (nats/char)"),
    ("val_bits_per_character", "val bits/char"),
    ("confidence", "confidence"),
    ("coverage", "coverage"),
    ("inception_score", "IS"),
    ("frechet_distance", "FD"),
    ("train_minutes", "train min"),
]


def _recommended_note(rows: list[dict]) -> list[str]:
    """A line naming the lessons' recommended recipes and the textbook models they improve."""
    pairs = [f"`{row['model']}` (after `{row['improves']}`)" for row in rows if "improves" in row]
    if not pairs:
        return []
    return [
        "The lessons' recommended recipes, each beside its textbook model: "
        + ", ".join(pairs)
        + "; 'train min' is the training time the Fréchet distance cost."
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
        *_recommended_note(rows),
        "",
    ]
    return "\n".join(lines)

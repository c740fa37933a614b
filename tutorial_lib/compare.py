r"""The families side by side (notebook 07): one table, likelihoods in one unit, the
seeds' claims checked against the measurements.

* :class:`LessonRuns` -- each family's run from the lesson that teaches it (its
  shipped run where the store has one), so the table quotes the lessons' own records;
* :func:`table_row` -- one row of the table from a run's record and its spread over
  seeds (:func:`tutorial_lib.checkpoints.shipped_spread`);
* :func:`interpolation` and :func:`walk_confidence` -- walking a family's latent
  space, and how digit-like the images on the way are; :func:`prior_walks` -- the
  same between two draws of the prior, the one walk a VAE and a GAN both have;
* :func:`measure_likelihoods` -- bounds and exact likelihoods on one data model
  (stochastically binarised MNIST), and the thresholded one beside it;
* :func:`convert` -- a likelihood from one unit to another (nats or bits, per image
  or per dimension);
* :data:`SEED_TABLES` and :data:`CLAIMS` -- the seed documents' comparison tables as
  printed, and each claim with the measurement that decides it (:func:`verdicts`).

A claim about quality is decided only when the figures of the families differ by
more than their spread over seeds (their ranges do not overlap); a claim about
stability when equally stable families would show the measured difference in under
5% of draws of as many seeds (:func:`range_ratio_chance`); a claim about a latent
space when the walks' difference is at least twice its standard error; a claim about
time when they differ by at least a factor of two. Otherwise: *not shown*.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tutorial_lib import checkpoints, data, families, metrics

AGREES, DISAGREES, CANNOT_TELL = "agrees", "disagrees", "not shown"
TIME_FACTOR = 2.0  # timings differ "clearly" when one is at least this many times the other
CHANCE = 0.05  # a stability difference counts when equal spreads give it less often than this


# --------------------------------------------------------------------------
# The runs of the lessons, and one row per family
# --------------------------------------------------------------------------


def table_families() -> list[str]:
    """The model names of the table: the autoencoder (the reference point, it draws no
    samples) and every image family of the registry, in the order of the lessons (the
    text-to-image model of notebook 09 last, a look ahead)."""
    by_lesson = sorted(families.image_families(), key=lambda name: families.get(name).lesson)
    return ["autoencoder", *by_lesson]


def autoencoder_stage(profile, *, pretrained="auto"):
    """Notebook 05's VAE, whose codes latent diffusion (and notebook 06's flow matching)
    learn (:func:`tutorial_lib.denoisers.autoencoder_stage`), shipped or trained here."""
    from tutorial_lib import denoisers, diffusion

    lesson = checkpoints.Lesson("05_diffusion", profile, pretrained=pretrained)
    config = diffusion.CONFIGS["diffusion"][profile.name]
    return denoisers.autoencoder_stage(lesson, config, profile)["vae"]


def needs_autoencoder_stage(name: str, profile) -> bool:
    """Whether the profile's model ``name`` samples a VAE's codes (latent diffusion and
    latent flow matching), which its lesson trains first as the stage ``autoencoder``."""
    config = families.get(name).config(profile.name)
    return getattr(config, "space", None) == "latent"


class LessonRuns:
    """The run of each model of the table that its lesson trains (key: the model name),
    loaded or trained once: the shipped run where the store has one for the profile
    (``pretrained="auto"``), trained here as the lesson would otherwise (``False``:
    always). ``given`` runs (this lesson's own) are used as they are."""

    def __init__(self, profile, *, pretrained="auto", given: dict | None = None):
        self.profile, self.pretrained = profile, pretrained
        self.runs = dict(given or {})
        self._stage = None

    def __getitem__(self, name: str):
        if name not in self.runs:
            stages = None
            if needs_autoencoder_stage(name, self.profile):
                if self._stage is None:
                    self._stage = autoencoder_stage(self.profile, pretrained=self.pretrained)
                stages = {"autoencoder": self._stage}
            lesson = checkpoints.Lesson(
                families.get(name).lesson, self.profile, pretrained=self.pretrained
            )
            self.runs[name] = lesson.train(name, stages=stages)
        return self.runs[name]


def measure(name: str, run, images: np.ndarray, *, samples: int = 200) -> dict:
    """What notebook 07 shows of one run besides its record: 10 samples, the grey fraction
    of ``samples`` samples, one interpolation (between the first two ``images``, or two
    draws of z) and the confidence on the ends and on the way of ten
    (:func:`walk_confidence`; nothing without a latent space). The images to show are kept
    in half precision, plenty for the eye, half the bytes of a shipped record."""
    result = {"record": run.record}
    if families.get(name).samples == "images":
        drawn = run.sample(samples, seed=1)
        result.update(samples=drawn[:10].astype(np.float16), grey=grey_fraction(drawn))
    path = interpolation(name, run.model, images[0], images[1])
    if path is not None:
        walks = walk_confidence(name, run.model, images)
        result.update(
            interpolation=path.astype(np.float16), in_between=walks["inner"], ends=walks["ends"]
        )
    return result


def retraining_time(profile, names: list[str], lesson: str = "07_compare") -> str:
    """How long retraining every model of the table takes, from the shipped records'
    training seconds (one line), or why that cannot be said."""
    seconds, count, machine = 0.0, 0, None
    records = {}
    for name in names:
        home = families.get(name).lesson
        if home not in records:
            records[home] = checkpoints.shipped_record(home, profile) or {"runs": {}}
        record = records[home]["runs"].get(name)
        if record is None:
            return (
                f"Retraining everything: no shipped run of {name} for the {profile.name} "
                "profile to time it by (each model trains as in its lesson)."
            )
        seconds += record["train_seconds"]
        count += 1
        machine = record.get("machine")
    own = checkpoints.shipped_record(lesson, profile) or {"runs": {}}
    extra = [r["train_seconds"] for k, r in own["runs"].items() if k not in names]
    seconds += sum(extra)
    count += len(extra)
    return (
        f"Retraining everything trains {count} models: about {seconds / 60:.0f} minutes "
        f"of training on {machine} (the shipped runs' own times), plus a few minutes of "
        "sampling and scoring."
    )


def spread_of(spread: dict | None, name: str, key: str | None = None) -> dict:
    """A model's figures over the seeds of ``pretrain`` (``{figure: [values]}``), from the
    store's spread (:func:`tutorial_lib.checkpoints.shipped_spread`); {} without one."""
    if not spread:
        return {}
    return spread.get(families.get(name).lesson, {}).get(key or name, {})


def span(values) -> str:
    """``"min–max"`` of a figure over seeds, or "–"."""
    if not values:
        return "–"
    low, high = min(values), max(values)
    digits = 0 if high >= 100 else 1 if high >= 10 else 2
    return f"{low:.{digits}f}–{high:.{digits}f}"


# How each data model of the registry (:data:`tutorial_lib.families.DATA_MODELS`) reads in
# the table; binary pixels say how they were binarised (the config's ``binarization``).
DATA_MODEL_WORDS = {
    ("binary pixels", "threshold"): "thresholded binary pixels",
    ("binary pixels", "stochastic"): "stochastically binarised pixels",
    ("dequantized pixels", None): "dequantized 8-bit pixels",
    ("characters", None): "characters",
}


def likelihood_label(name: str, record: dict) -> str:
    """What likelihood model ``name``'s run reports, with its data model (the registry's
    :attr:`~tutorial_lib.families.Family.data_model`: figures of different data models
    do not compare)."""
    family = families.get(name)
    if family.likelihood == "none" or record.get("nll") is None:
        return "none"
    binarization = (record.get("config") or {}).get("binarization")
    how = binarization if family.data_model == "binary pixels" else None
    what = "bound (negative ELBO)" if family.likelihood == "bound" else "exact"
    unit = family.likelihood_unit.replace(" per ", "/")
    return f"{what}, {record['nll']:.1f} {unit}, {DATA_MODEL_WORDS[family.data_model, how]}"


def table_row(name: str, record: dict, spread: dict | None = None) -> dict:
    """One row of the table (a dict of display columns) from a run's record."""
    family = families.get(name)
    seeds = spread_of(spread, name)
    sampling = record.get("sample_seconds_per_item")
    return {
        "model": name,
        "lesson": family.lesson,
        "train min": round(record["train_seconds"] / 60, 1),
        "sample ms/image": "–" if sampling is None else round(1000 * sampling, 2),
        "confidence": _or_dash(record.get("confidence"), ".3f"),
        "coverage": _or_dash(record.get("coverage"), ".1f"),
        "FD": _or_dash(record.get("frechet_distance"), ".1f"),
        "FD over seeds": span(seeds.get("frechet_distance")),
        "train min over seeds": span([s / 60 for s in seeds.get("train_seconds", [])]),
        "parameters": f"{record['parameters']:,}",
        "likelihood": likelihood_label(name, record),
        "latent space": LATENT_SPACES[_latent_kind(name)],
    }


# The table in two parts: what was measured, and what each model is.
MEASURED_COLUMNS = (
    "model",
    "train min",
    "sample ms/image",
    "confidence",
    "coverage",
    "FD",
    "FD over seeds",
    "train min over seeds",
)
NATURE_COLUMNS = ("model", "lesson", "parameters", "likelihood", "latent space")


def _or_dash(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


# --------------------------------------------------------------------------
# Latent spaces: walking from one point to another
# --------------------------------------------------------------------------

LATENT_SPACES = {
    "encoder": "yes: an encoder gives every image its code",
    "noise": "noise z, but no encoder for real images",
    "sampler": "noise, through many steps (not walked here)",
    "none": "none: pixels are drawn one by one",
}


def _latent_kind(name: str) -> str:
    """The registry's word for model ``name``'s latent space (:data:`families.LATENTS`)."""
    return families.get(name).latent


def has_encoder(name: str) -> bool:
    """Whether model ``name`` gives real images a code (the autoencoder, the VAE, a flow)."""
    return _latent_kind(name) == "encoder"


def decision_table(models: dict) -> list[dict]:
    """The rows a use case is decided on (exercise 07): for every model of ``models`` (name
    -> ``{"record": ...}``, as :func:`measure` gives) that draws images, its milliseconds
    per image, FD, likelihood ("none", "bound" or "exact") and whether it has an encoder."""
    rows = []
    for name, found in models.items():
        record = found["record"]
        if record.get("sample_seconds_per_item") is None:
            continue
        rows.append(
            {
                "model": name,
                "ms_per_image": 1000 * record["sample_seconds_per_item"],
                "fd": record["frechet_distance"],
                "likelihood": record.get("likelihood") or "none",
                "encoder": has_encoder(name),
            }
        )
    return rows


def _path(start, end, steps: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps).reshape(-1, *([1] * np.ndim(start)))
    return ((1.0 - t) * start + t * end).astype(np.float32)


def interpolation(name: str, model, start, end, *, steps: int = 8, seed: int = 0):
    """Images on the straight line between two points of model ``name``'s latent space,
    (steps, 28, 28, 1) in [0, 1], or None for a family without one. ``start`` and ``end``
    are two images (encoder families: the line joins their codes) or are ignored (noise
    families: two draws of z from ``seed``; a conditional GAN keeps the digit 0)."""
    kind = _latent_kind(name)
    module = families.get(name).load()
    if kind not in ("encoder", "noise"):
        return None
    if kind == "noise":
        generator = getattr(model, "generator", model)
        latent_dim = int(generator.inputs[0].shape[-1])
        z0, z1 = np.random.default_rng(seed).standard_normal((2, latent_dim))
        labels = 0 if families.get(name).conditional else None
        return module.sample(model, steps, z=_path(z0, z1, steps), labels=labels)
    codes = module.encode(model, np.stack([start, end]).astype(np.float32))
    return module.decode(model, _path(codes[0], codes[1], steps))


def walk_confidence(name: str, model, images: np.ndarray, *, pairs: int = 10, steps=8):
    """How digit-like the way is: the evaluation classifier's mean confidence on the ends
    and on the inner ``steps - 2`` images of ``pairs`` walks (between consecutive
    ``images`` for encoder families, between draws of z for noise families), as
    ``{"ends": ..., "inner": ...}``, or None without a latent space. Real test digits
    score about 0.99; a walk between two different digits dips in the middle, less
    where the latent space is smooth."""
    ends, inner = [], []
    for index in range(pairs):
        path = interpolation(name, model, images[index], images[index + 1], steps=steps, seed=index)
        if path is None:
            return None
        ends.append(path[[0, -1]])
        inner.append(path[1:-1])
    return {
        "ends": metrics.classifier_confidence(np.concatenate(ends), "mnist"),
        "inner": metrics.classifier_confidence(np.concatenate(inner), "mnist"),
    }


def prior_walks(name: str, model, *, pairs: int = 20, steps: int = 8) -> dict | None:
    """Walks between two draws of ``z ~ N(0, I)``, the prior a VAE's decoder and a GAN's
    generator both sample from (the like-for-like walk of the two: a GAN has no encoder):
    per walk ``w`` (draws from seed ``w``), the evaluation classifier's mean confidence on
    its two ends and on its ``steps - 2`` inner images, as ``{"ends": [...], "inner":
    [...]}``; None for a family whose samples do not come from N(0, I) in one pass."""
    family = families.get(name)
    if family.latent == "encoder" and getattr(model, "standard_normal_prior", False):
        latent_dim = int(model.decoder.inputs[0].shape[-1])

        def walk(seed):
            z0, z1 = np.random.default_rng(seed).standard_normal((2, latent_dim))
            return family.load().decode(model, _path(z0, z1, steps))

    elif family.latent == "noise" and not family.conditional:

        def walk(seed):
            return interpolation(name, model, None, None, steps=steps, seed=seed)

    else:
        return None
    paths = np.concatenate([walk(seed) for seed in range(pairs)])
    _, probs = metrics.classifier_outputs(paths, "mnist")
    top = probs.max(axis=1).reshape(pairs, steps)
    return {
        "ends": top[:, [0, -1]].mean(axis=1).tolist(),
        "inner": top[:, 1:-1].mean(axis=1).tolist(),
    }


def grey_fraction(images) -> float:
    """The fraction of pixels that are neither near black nor near white (between 0.1 and
    0.9): about 0.08 for MNIST's own digits, more for blurred ones, 0 for binary ones."""
    x = np.asarray(images, np.float32)
    return float(np.mean((x > 0.1) & (x < 0.9)))


# --------------------------------------------------------------------------
# The seeds' tables, as printed
# --------------------------------------------------------------------------

# The course's static tables, as data files beside the quizzes (tutorial_lib/course/tables/).
TABLES = Path(__file__).resolve().parent / "course" / "tables"


def read_table_file(name: str) -> dict:
    """One TOML file of :data:`TABLES`, parsed."""
    with open(TABLES / name, "rb") as file:
        return tomllib.load(file)


_SEED_FILE = read_table_file("seed_tables.toml")
# The seed documents' comparison tables as they print them, by title.
SEED_TABLES = {
    table["title"]: {"columns": tuple(table["columns"]), "rows": [tuple(r) for r in table["rows"]]}
    for table in _SEED_FILE["table"]
}
# Seed 001's GAN challenges with each description under its own name (the printed table
# shifts the names by one row and names "Disentanglement" twice).
CORRECTED_GAN_CHALLENGES = [tuple(row) for row in _SEED_FILE["corrected_gan_challenges"]["rows"]]


def seed_table(title: str) -> list[dict]:
    """A seed table as rows (dicts) for :func:`tutorial_lib.display.markdown_table`."""
    table = SEED_TABLES[title]
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


# --------------------------------------------------------------------------
# The seeds' claims, decided by the measurements
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Measurements:
    """What the claims are judged on.

    Attributes:
        records: run records by model name (the table's).
        spread: figures over seeds by model name (``{figure: [values]}``), {} when the
            store has none.
        extras: by model name, what notebook 07 measured besides (``grey``, the grey
            fraction of samples; ``in_between``, the in-between confidence), and
            ``"real"``: the same for real test images.
        elbo_gap: how many nats the importance-weighted bound lies below the negative
            ELBO for the VAE (None if not measured).
        prior_walks: by model name, :func:`prior_walks` of its run ({} if not measured).
    """

    records: dict
    spread: dict = dataclasses.field(default_factory=dict)
    extras: dict = dataclasses.field(default_factory=dict)
    elbo_gap: float | None = None
    prior_walks: dict = dataclasses.field(default_factory=dict)

    def value(self, name: str, key: str):
        return self.records.get(name, {}).get(key)

    def values(self, name: str, key: str) -> list:
        """A figure over seeds, or [] with fewer than 3 seeds."""
        found = self.spread.get(name, {}).get(key) or []
        return list(found) if len(found) >= 3 else []

    def ms(self, name: str) -> float | None:
        seconds = self.value(name, "sample_seconds_per_item")
        return None if seconds is None else 1000 * seconds


def _lower(m: Measurements, a: str, b: str, key: str) -> str:
    """AGREES if ``a``'s figure is clearly lower than ``b``'s over seeds (their ranges do
    not overlap), DISAGREES if clearly higher, CANNOT_TELL otherwise."""
    va, vb = m.values(a, key), m.values(b, key)
    if not va or not vb:
        return CANNOT_TELL
    if max(va) < min(vb):
        return AGREES
    if min(va) > max(vb):
        return DISAGREES
    return CANNOT_TELL


def _faster(m: Measurements, a: str, b: str) -> str:
    """AGREES if ``a`` samples at least TIME_FACTOR times faster than ``b``, DISAGREES if
    at least that much slower, CANNOT_TELL between."""
    ta, tb = m.ms(a), m.ms(b)
    if ta is None or tb is None:
        return CANNOT_TELL
    if ta * TIME_FACTOR <= tb:
        return AGREES
    if tb * TIME_FACTOR <= ta:
        return DISAGREES
    return CANNOT_TELL


def _relative_spread(m: Measurements, name: str, key: str = "frechet_distance"):
    values = m.values(name, key)
    if not values:
        return None
    return (max(values) - min(values)) / float(np.median(values))


def _fd(m, name) -> str:
    values = m.values(name, "frechet_distance")
    return f"FD {span(values)} over {len(values)} seeds" if values else "no spread"


def _ms(m, name) -> str:
    value = m.ms(name)
    return "–" if value is None else f"{value:.2g} ms"


def _samples_slowly(m: Measurements, slow: str, fast: str = "gan"):
    """A claim that ``slow`` samples slowly, judged against the one-pass ``fast``."""
    verdict = {AGREES: DISAGREES, DISAGREES: AGREES}.get(_faster(m, slow, fast), CANNOT_TELL)
    return f"{_ms(m, slow)} per image against {_ms(m, fast)} for {fast}", verdict


def _gan_samples_slowly(m: Measurements):
    """Seed 002 rates the GAN slower than the VAE and faster than diffusion: a GAN
    samples in one pass of its generator, as a VAE does in one pass of its decoder."""
    evidence = (
        f"one pass: {_ms(m, 'gan')} per image; VAE {_ms(m, 'vae')}, diffusion {_ms(m, 'diffusion')}"
    )
    against_vae = _faster(m, "gan", "vae")
    if against_vae == DISAGREES:  # the GAN is clearly slower than the VAE
        return evidence, AGREES
    if _faster(m, "gan", "diffusion") == AGREES:  # as fast as the VAE or faster
        return evidence + ": one pass, far faster than diffusion", DISAGREES
    return evidence, CANNOT_TELL


@functools.lru_cache(maxsize=64)
def range_ratio_chance(ratio: float, seeds: tuple[int, int], *, draws: int = 50_000) -> float:
    r"""How often two families that are *equally* stable show a ratio of ranges over seeds
    of at least ``ratio``: :math:`P(R_a / R_b \ge \text{ratio})`, where :math:`R_a` and
    :math:`R_b` are the ranges of ``seeds[0]`` and ``seeds[1]`` draws from one normal
    distribution (Monte Carlo, a fixed seed). With three seeds each, a ratio of 2 comes
    up by chance one time in five: the noise a stability claim must clear."""
    rng = np.random.default_rng(0)
    ranges = [np.ptp(rng.standard_normal((draws, n)), axis=1) for n in seeds]
    return float(np.mean(ranges[0] >= ratio * ranges[1]))


def _unstable(m: Measurements, unstable: str, stable: str):
    """A claim that ``unstable`` trains less stably than ``stable``: the ratio of their
    FD's relative ranges over seeds, decided only when equally stable families would show
    a ratio that far from 1 in fewer than :data:`CHANCE` of the draws
    (:func:`range_ratio_chance`)."""
    a, b = _relative_spread(m, unstable), _relative_spread(m, stable)
    if a is None or b is None:
        return "needs the spread over seeds (shipped with the cpu profile)", CANNOT_TELL
    seeds = (len(m.values(unstable, "frechet_distance")), len(m.values(stable, "frechet_distance")))
    high, low, verdict = (a, b, AGREES) if a >= b else (b, a, DISAGREES)
    ratio = high / low if low > 0 else math.inf
    chance = range_ratio_chance(ratio, seeds if a >= b else seeds[::-1])
    evidence = (
        f"FD range / median over {seeds[0]} and {seeds[1]} seeds: {unstable} {a:.1%}, "
        f"{stable} {b:.1%} (ratio {ratio:.2f}); equally stable families show a ratio this "
        f"large in {chance:.0%} of draws"
    )
    return evidence, verdict if chance < CHANCE else CANNOT_TELL


def _better_quality(m: Measurements, better: str, worse: str):
    evidence = f"{better}: {_fd(m, better)}; {worse}: {_fd(m, worse)} (lower is better)"
    return evidence, _lower(m, better, worse, "frechet_distance")


def _blurry(m: Measurements, blurry: str, sharp: str):
    """A claim that ``blurry``'s samples are blurred: clearly more grey pixels (1.5 times)
    than both ``sharp``'s samples and real digits agrees; hardly more than real digits
    disagrees."""
    g = {name: m.extras.get(name, {}).get("grey") for name in (blurry, sharp, "real")}
    if None in g.values():
        return "grey pixels not measured", CANNOT_TELL
    evidence = (
        f"grey pixels: {blurry} {g[blurry]:.0%}, {sharp} {g[sharp]:.0%}, "
        f"real digits {g['real']:.0%}"
    )
    if g[blurry] >= 1.5 * max(g[sharp], g["real"]):
        return evidence, AGREES
    if g[blurry] <= 1.5 * g["real"]:
        return evidence, DISAGREES
    return evidence, CANNOT_TELL


def _mode_collapse(m: Measurements):
    coverage = m.values("gan", "coverage") or [m.value("gan", "coverage")]
    if None in coverage:
        return "not measured", CANNOT_TELL
    evidence = f"coverage of the ten digits over {len(coverage)} seed(s): {span(coverage)}"
    if min(coverage) < 1.0:
        return evidence, AGREES
    return evidence + ": not in these runs (notebook 03 provokes one)", CANNOT_TELL


def _explicit_likelihood(m: Measurements):
    """Seed 001's "explicit likelihood": a VAE writes its density down, p(x) = E_p(z)[p(x|z)]
    (an explicit-density model in Goodfellow's 2016 taxonomy), but computes it only
    approximately, through bounds: explicit, not exact."""
    gap = (
        ""
        if m.elbo_gap is None
        else f"; the importance-weighted bound is {m.elbo_gap:.1f} nats tighter than the ELBO"
    )
    return f"explicit but not exact: the density is written down, computed as bounds{gap}", AGREES


def _structured_latent(m: Measurements, better: str, worse: str):
    """A claim that ``better``'s latent space is more structured, on the one walk both
    have (:func:`prior_walks`, between two draws of N(0, I)): how much the classifier's
    confidence drops from a walk's ends to the images on the way, averaged over the
    walks, decided when the two mean drops differ by at least twice the standard error
    of their difference."""
    drops, errors = {}, {}
    for name in (better, worse):
        walks = m.prior_walks.get(name)
        if not walks:
            return "needs walks between prior draws of both", CANNOT_TELL
        per_walk = np.asarray(walks["ends"]) - np.asarray(walks["inner"])
        drops[name] = float(per_walk.mean())
        errors[name] = float(per_walk.std(ddof=1) / np.sqrt(len(per_walk)))
    difference = drops[worse] - drops[better]
    error = math.hypot(errors[better], errors[worse])
    evidence = (
        f"walks between two draws of N(0, I): confidence drop from the ends to the middle, "
        f"{better} {drops[better]:.3f}, {worse} {drops[worse]:.3f}; difference "
        f"{difference:+.3f} ± {error:.3f} (standard error)"
    )
    if abs(difference) < 2 * error:
        return evidence, CANNOT_TELL
    return evidence, AGREES if difference > 0 else DISAGREES


def _costs_more(m: Measurements, costly: str, cheap: str):
    ta, tb = m.value(costly, "train_seconds"), m.value(cheap, "train_seconds")
    pa, pb = m.value(costly, "parameters"), m.value(cheap, "parameters")
    if None in (ta, tb, pa, pb):
        return "not measured", CANNOT_TELL
    evidence = f"training {ta / 60:.1f} against {tb / 60:.1f} min, {pa:,} against {pb:,} parameters"
    if ta >= TIME_FACTOR * tb:
        return evidence, AGREES
    if tb >= TIME_FACTOR * ta:
        return evidence, DISAGREES
    return evidence, CANNOT_TELL


def _static(evidence: str, verdict: str):
    return lambda m: (evidence, verdict)


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of a seed document: where it stands, what it says, and the measurement
    that decides it (``judge(measurements) -> (evidence, verdict)``)."""

    seed: str
    row: str
    says: str
    judge: Callable[[Measurements], tuple[str, str]]
    needs: tuple[str, ...] = ()


CLAIMS = [
    Claim(
        "002",
        "Autoencoder, quality",
        "⭐⭐⭐ Good",
        _static(
            "by itself it draws no samples: random codes decode to smudges (notebook 01)", DISAGREES
        ),
        ("autoencoder",),
    ),
    Claim("002", "GAN, speed", "⚡ Slow", _gan_samples_slowly, ("gan", "vae", "diffusion")),
    Claim(
        "002",
        "Diffusion, speed",
        "🐌 Very slow",
        lambda m: _samples_slowly(m, "diffusion"),
        ("diffusion", "gan"),
    ),
    Claim(
        "002",
        "GAN, training stability",
        "⚠️ Unstable (VAE ✅ Stable)",
        lambda m: _unstable(m, "gan", "vae"),
        ("gan", "vae"),
    ),
    Claim(
        "002",
        "GAN, quality",
        "⭐⭐⭐⭐⭐ (VAE ⭐⭐⭐)",
        lambda m: _better_quality(m, "gan", "vae"),
        ("gan", "vae"),
    ),
    Claim(
        "002",
        "Diffusion, quality",
        "⭐⭐⭐⭐⭐ (VAE ⭐⭐⭐)",
        lambda m: _better_quality(m, "diffusion", "vae"),
        ("diffusion", "vae"),
    ),
    Claim("001", "VAEs, strengths", "explicit likelihood", _explicit_likelihood, ("vae",)),
    Claim(
        "001",
        "VAEs, weaknesses",
        "often blurry outputs",
        lambda m: _blurry(m, "vae", "gan"),
        ("vae", "gan"),
    ),
    Claim("001", "GANs, weaknesses", "mode collapse", _mode_collapse, ("gan",)),
    Claim(
        "001",
        "GANs, weaknesses",
        "no explicit likelihood",
        _static("none is defined: samples lie on the generator's thin image of z", AGREES),
        ("gan",),
    ),
    Claim(
        "001",
        "Diffusion, weaknesses",
        "slow sampling",
        lambda m: _samples_slowly(m, "diffusion"),
        ("diffusion", "gan"),
    ),
    Claim(
        "001",
        "Autoregressive, weaknesses",
        "slow generation",
        lambda m: _samples_slowly(m, "pixelcnn"),
        ("pixelcnn", "gan"),
    ),
    Claim(
        "001",
        "Autoregressive, strengths",
        "tractable likelihood",
        _static("exact, one pass of the network per image (the PixelCNN here)", AGREES),
        ("pixelcnn",),
    ),
    Claim(
        "001",
        "Flow-based, characteristics",
        "efficient exact likelihood",
        _static("exact, one pass per image (RealNVP, notebook 06)", AGREES),
        ("realnvp",),
    ),
    Claim(
        "003",
        "GANs against VAEs",
        "sharper, more detailed images",
        lambda m: _better_quality(m, "gan", "vae"),
        ("gan", "vae"),
    ),
    Claim(
        "003",
        "VAEs against GANs",
        "more stable training",
        lambda m: _unstable(m, "gan", "vae"),
        ("gan", "vae"),
    ),
    Claim(
        "003",
        "VAEs against GANs",
        "more structured latent spaces",
        lambda m: _structured_latent(m, "vae", "gan"),
        ("vae", "gan"),
    ),
    Claim(
        "003",
        "GANs, challenges",
        "resource intensive",
        lambda m: _costs_more(m, "gan", "vae"),
        ("gan", "vae"),
    ),
]


def verdicts(measurements: Measurements) -> list[dict]:
    """Every claim whose families were measured, as rows: seed, where, what it says,
    what was measured, and the verdict."""
    rows = []
    for claim in CLAIMS:
        if not all(name in measurements.records for name in claim.needs):
            continue
        evidence, verdict = claim.judge(measurements)
        rows.append(
            {
                "seed": claim.seed,
                "row": claim.row,
                "says": claim.says,
                "measured": evidence,
                "verdict": verdict,
            }
        )
    return rows


def real_images(dataset: str = "mnist", n: int = 200) -> np.ndarray:
    """The first ``n`` test images (grey), the reference for :func:`grey_fraction`."""
    return data.load_images(dataset, "test", limit=n)[0]


# --------------------------------------------------------------------------
# Likelihoods on one data model
# --------------------------------------------------------------------------


# The sizes of notebook 07's likelihood table, per profile: the test images it scores, the
# codes per image of the importance-weighted bound, and the bound's k against k on fewer
# images (notebook 07b measures the same table when part 1's is not at hand).
LIKELIHOOD_SIZES = {
    "fast": {"images": 64, "k": 10, "k_curve": (1, 5, 20), "curve_images": 16},
    "cpu": {"images": 1000, "k": 200, "k_curve": (1, 10, 100, 1000), "curve_images": 200},
    "gpu": {"images": 10_000, "k": 1000, "k_curve": (1, 10, 100, 1000, 5000), "curve_images": 1000},
}


def measure_likelihoods(
    vaes: dict, exact: dict, *, images: int, k: int, k_curve=(), curve_images: int = 200
) -> dict:
    """Negative log-likelihoods in nats per image of the first ``images`` test images,
    stochastically binarised (the literature's data model) and thresholded.

    ``vaes`` (key -> VAE) get the negative ELBO and the importance-weighted bound with
    ``k`` codes, the same images for both; ``exact`` (key -> PixelCNN) the exact value.
    The first VAE's bound on the stochastic images is also measured for every k of
    ``k_curve`` on ``curve_images`` of them. Returns ``{key: {binarization: {"elbo",
    "iwae"} or {"exact"}}, "k_curve": {"k": [...], "iwae": [...]}, "images", "k"}``.
    """
    from tutorial_lib import pixelcnn, vae

    tests = {
        how: data.load_images("mnist", "test", limit=images, binarize=how)[0]
        for how in data.BINARIZATIONS
    }
    result = {"images": images, "k": k}
    for key, model in vaes.items():
        result[key] = {
            how: {
                "elbo": vae.negative_elbo(model, x)["negative_elbo"],
                "iwae": vae.importance_weighted_nll(model, x, k=k),
            }
            for how, x in tests.items()
        }
    for key, model in exact.items():
        result[key] = {
            how: {"exact": float(np.mean(pixelcnn.negative_log_likelihood(model, x)))}
            for how, x in tests.items()
        }
    first = next(iter(vaes.values()))
    x = tests["stochastic"][:curve_images]
    result["k_curve"] = {
        "k": list(k_curve),
        "iwae": [vae.importance_weighted_nll(first, x, k=n) for n in k_curve],
    }
    return result


def likelihood_rows(result: dict, labels: dict) -> list[dict]:
    """The rows of the likelihood table from :func:`measure_likelihoods`'s ``result``:
    per model (``labels``: key -> what it is and what it trained on), each kind of
    figure on the stochastic and the thresholded test images, in nats per image, and
    bits per dimension on the stochastic images."""
    rows = []
    kinds = {
        "elbo": "bound: negative ELBO",
        "iwae": f"bound: importance-weighted, k = {result['k']}",
        "exact": "exact",
    }
    for key, label in labels.items():
        for kind, title in kinds.items():
            if kind not in result[key]["stochastic"]:
                continue
            stochastic = result[key]["stochastic"][kind]
            rows.append(
                {
                    "model": label,
                    "figure": title,
                    "stochastic binarisation (nats/image)": round(stochastic, 1),
                    "thresholded (nats/image)": round(result[key]["threshold"][kind], 1),
                    "bits/dim (stochastic)": round(
                        metrics.convert(stochastic, "nats per image", "bits per dimension"), 3
                    ),
                }
            )
    return rows


# Published likelihoods (model, what kind of figure, nats per image, the key of its paper in
# tutorial_lib/references.toml), from tutorial_lib/course/tables/literature.toml.
LITERATURE = [
    (figure["model"], figure["likelihood"], figure["nats_per_image"], figure["reference"])
    for figure in read_table_file("literature.toml")["figure"]
]

"""Plots every notebook uses. Each function returns a Matplotlib ``Figure``.

Figures are made with ``matplotlib.figure.Figure`` directly, not ``pyplot``,
so nothing pops up or piles up in memory outside a notebook; Jupyter shows a
returned figure as the cell's result. Every plot has a title and labelled axes.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter


def _display_figures_inline() -> None:
    """In Jupyter with the inline backend, show a returned ``Figure`` as an image.

    IPython registers its image formatter only once pyplot's backend loads,
    which never happens here since we build figures without pyplot.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and "inline" in matplotlib.get_backend():
        shell.run_line_magic("matplotlib", "inline")


_display_figures_inline()


def _as_images(images) -> np.ndarray:
    """(N, H, W) array from (N, H, W, 1), (N, H, W) or (N, H*W) input."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    elif images.ndim == 2:
        side = int(round(math.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(
                f"Flat images of {images.shape[1]} pixels are not square; reshape them first."
            )
        images = images.reshape(-1, side, side)
    if images.ndim != 3:
        raise ValueError(
            f"Expected images of shape (N, H, W, 1), (N, H, W) or (N, H*W); got {images.shape}."
        )
    return images


def image_grid(
    images,
    *,
    ncols: int | None = None,
    title: str = "Images",
    labels=None,
    cell_size: float = 1.0,
) -> Figure:
    """A grid of greyscale images with pixel values in [0, 1].

    Args:
        images: shape (N, 28, 28, 1), (N, 28, 28) or (N, 784).
        ncols: images per row (default: about the square root of N).
        title: figure title.
        labels: optional caption per image (class names, predictions).
    """
    images = _as_images(images)
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image.")
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    row_height = cell_size * (1.3 if labels is not None else 1.0)
    fig = Figure(figsize=(cell_size * ncols, row_height * nrows + 0.7))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < n:
            ax.imshow(images[index], cmap="gray", vmin=0.0, vmax=1.0)
            if labels is not None:
                ax.set_title(str(labels[index]), fontsize=8, pad=2)
        else:
            ax.axis("off")
    fig.supxlabel(f"{n} images, {ncols} per row", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_rows(rows: dict, *, n: int = 10, title: str = "Images") -> Figure:
    """One row of ``n`` images per entry of ``rows`` (row label -> images), aligned by column.

    Used for originals vs reconstructions, and noisy / denoised / clean.
    """
    if not rows:
        raise ValueError("image_rows needs at least one row.")
    rows = {label: _as_images(images) for label, images in rows.items()}
    shapes = {images.shape[1:] for images in rows.values()}
    if len(shapes) != 1:
        raise ValueError(f"All rows must hold images of one size; got {sorted(shapes)}.")
    n = min(n, *(len(images) for images in rows.values()))
    fig = Figure(figsize=(1.1 * n, 1.2 * len(rows) + 0.6))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for row, (label, images) in enumerate(rows.items()):
        for i in range(n):
            ax = axes[row, i]
            ax.imshow(images[i], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        # Row names stand level and wrapped at the left, so long ones never run into the next row.
        axes[row, 0].set_ylabel(
            textwrap.fill(label, 16), rotation=0, ha="right", va="center", fontsize=9
        )
    fig.supxlabel(f"images 1 to {n}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reconstruction_rows(
    originals, reconstructions, *, n: int = 10, title: str = "Originals and reconstructions"
) -> Figure:
    """Two rows: ``n`` originals on top, their reconstructions below."""
    originals, reconstructions = _as_images(originals), _as_images(reconstructions)
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} "
            "must have the same shape."
        )
    return image_rows({"original": originals, "reconstructed": reconstructions}, n=n, title=title)


def histograms(
    samples: dict,
    *,
    xlabel: str,
    title: str,
    bins: int = 60,
    threshold: float | None = None,
    log_x: bool = False,
) -> Figure:
    """Overlaid histograms of several samples (label -> values), each bar the
    fraction of its sample that falls in the bin.

    ``threshold``, if given, is drawn as a vertical line (a decision threshold).
    """
    values = {label: np.asarray(v, dtype=np.float64).ravel() for label, v in samples.items()}
    everything = np.concatenate(list(values.values()))
    if log_x:
        everything = everything[everything > 0]
        edges = np.geomspace(everything.min(), everything.max(), bins + 1)
    else:
        edges = np.linspace(everything.min(), everything.max(), bins + 1)
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    for label, v in values.items():
        weights = np.full(len(v), 1.0 / len(v))  # bar height: fraction of that sample
        ax.hist(v, bins=edges, weights=weights, alpha=0.55, label=f"{label} (n={len(v):,})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of images")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def loss_curves(
    history,
    *,
    keys=None,
    title: str = "Training curves",
    ylabel: str | None = None,
    log_y: bool = False,
) -> Figure:
    """Per-epoch curves from a Keras ``History`` (or its ``.history`` dict).

    Each metric is drawn with its ``val_`` twin, if there is one, in the same
    colour, dashed. ``keys`` picks which metrics to draw (default: all).
    """
    logs = getattr(history, "history", history)
    if not logs:
        raise ValueError("The history is empty: train for at least one epoch first.")
    keys = keys or [k for k in logs if not k.startswith("val_")]
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for key in keys:
        values = logs[key]
        epochs = np.arange(1, len(values) + 1)
        (line,) = ax.plot(epochs, values, marker="o", markersize=3, label=key)
        if f"val_{key}" in logs:
            ax.plot(
                epochs,
                logs[f"val_{key}"],
                linestyle="--",
                color=line.get_color(),
                label=f"val_{key}",
            )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel or (keys[0] if len(keys) == 1 else "value"))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def latent_scatter(
    codes, labels, *, title: str = "Latent space", class_names=None, max_points: int = 5000
) -> Figure:
    """Latent codes as a 2-D scatter coloured by label.

    Codes with more than two dimensions are projected onto their first two
    principal components (PCA), and the axes say so.
    """
    codes = np.asarray(codes, dtype=np.float32).reshape(len(codes), -1)[:max_points]
    labels = np.asarray(labels)[: len(codes)]
    if codes.shape[1] == 1:
        raise ValueError("latent_scatter needs codes of at least 2 dimensions.")
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2)
        points = pca.fit_transform(codes)
        explained = pca.explained_variance_ratio_
        xlabel = f"principal component 1 ({explained[0]:.0%} of variance)"
        ylabel = f"principal component 2 ({explained[1]:.0%} of variance)"
        title = f"{title} ({codes.shape[1]}-D, PCA to 2-D)"
    else:
        points = codes
        xlabel, ylabel = "z[0]", "z[1]"
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6, alpha=0.7)
    classes = np.unique(labels)
    handles, _ = scatter.legend_elements(num=list(classes))
    names = [class_names[c] if class_names is not None else str(c) for c in classes]
    ax.legend(handles, names, title="label", fontsize=8, loc="best", markerscale=1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# Sequences: attention maps, text side by side, plain curves (notebook 04)
# --------------------------------------------------------------------------


def _token_label(token: str) -> str:
    """A token as a readable tick label: newline as ``\\n``, a space as an open box."""
    return {"\n": "\\n", " ": "\u2423", "\t": "\\t"}.get(token, token)


def _attention_axes(ax, weights, query_labels, key_labels, fontsize):
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(key_labels)))
    ax.set_xticklabels([_token_label(t) for t in key_labels], fontsize=fontsize)
    ax.set_yticks(range(len(query_labels)))
    ax.set_yticklabels([_token_label(t) for t in query_labels], fontsize=fontsize)
    ax.tick_params(length=0)
    return image


def attention_heatmap(
    weights,
    *,
    query_labels,
    key_labels=None,
    title: str = "Attention weights",
    fontsize: int = 8,
) -> Figure:
    """One attention matrix (queries down, keys across) with a token on every row and column.

    ``weights`` has shape (T_q, T_k), each row a query's weights over the keys
    (summing to 1); ``key_labels`` default to ``query_labels`` (self-attention).
    """
    weights = np.asarray(weights, dtype=np.float32)
    key_labels = query_labels if key_labels is None else key_labels
    if weights.shape != (len(query_labels), len(key_labels)):
        raise ValueError(
            f"weights of shape {weights.shape} do not match {len(query_labels)} query and "
            f"{len(key_labels)} key labels."
        )
    size = 0.22 * max(len(key_labels), 8)
    fig = Figure(figsize=(size + 1.8, 0.22 * max(len(query_labels), 8) + 1.2))
    ax = fig.subplots()
    image = _attention_axes(ax, weights, query_labels, key_labels, fontsize)
    fig.colorbar(image, ax=ax, label="attention weight", fraction=0.05)
    ax.set_xlabel("key position (attended to)")
    ax.set_ylabel("query position (attending)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def attention_heads(
    weights, *, labels, title: str = "Attention of every head", fontsize: int = 5, ncols: int = 2
) -> Figure:
    """Attention matrices, one per head, ``ncols`` to a row: ``weights`` (heads, T, T)
    over ``labels``."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 3 or weights.shape[1:] != (len(labels), len(labels)):
        raise ValueError(
            f"expected weights of shape (heads, {len(labels)}, {len(labels)}), got {weights.shape}."
        )
    heads = len(weights)
    ncols = min(ncols, heads)
    nrows = math.ceil(heads / ncols)
    side = 0.09 * max(len(labels), 16) + 0.8
    fig = Figure(figsize=(side * ncols + 1.0, side * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False).flat
    for head, ax in enumerate(axes):
        if head >= heads:
            ax.axis("off")
            continue
        image = _attention_axes(ax, weights[head], labels, labels, fontsize)
        ax.set_title(f"head {head}", fontsize=9)
        ax.set_xlabel("key", fontsize=8)
        ax.set_ylabel("query", fontsize=8)
    fig.colorbar(image, ax=list(fig.axes), label="attention weight", fraction=0.03)
    fig.suptitle(title)
    return fig


def text_panels(
    panels: dict, *, title: str = "Samples", ncols: int | None = None, fontsize: int = 7
) -> Figure:
    """Texts side by side in monospace, one panel per entry (panel title -> text).

    Long lines are wrapped at 42 characters; each panel shows at most 30 lines.
    """
    import textwrap

    if not panels:
        raise ValueError("text_panels needs at least one text.")
    ncols = ncols or min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 4.4 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, (label, text) in zip(axes.flat, panels.items(), strict=False):
        lines = []
        for line in str(text).split("\n"):
            lines.extend(textwrap.wrap(line, 42, replace_whitespace=False) or [""])
        ax.text(
            0.02,
            0.98,
            "\n".join(lines[:30]),
            va="top",
            ha="left",
            family="monospace",
            fontsize=fontsize,
            transform=ax.transAxes,
        )
        ax.set_title(label, fontsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def line_plot(
    x,
    series: dict,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    log_y: bool = False,
    log_x: bool = False,
) -> Figure:
    """Curves over a common x axis (label -> y values), with a legend."""
    if not series:
        raise ValueError("line_plot needs at least one series.")
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for label, y in series.items():
        ax.plot(x, y, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def curves(
    series: dict,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    levels: dict | None = None,
    log_y: bool = False,
) -> Figure:
    """Curves with x values of their own (label -> ``(x, y)``), and horizontal dashed
    lines at reference ``levels`` (label -> y): a measure against training time for
    runs of different lengths, with the figures of runs that have no curve."""
    if not series:
        raise ValueError("curves needs at least one series.")
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for label, (x, y) in series.items():
        if len(x) != len(y):
            raise ValueError(f"{label}: {len(x)} x values but {len(y)} y values.")
        ax.plot(x, y, marker="o", markersize=3, label=label)
    for i, (label, level) in enumerate((levels or {}).items()):
        ax.axhline(level, linestyle="--", linewidth=1, color=f"C{len(series) + i}", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# Class histograms of generated samples (notebook 03)
# --------------------------------------------------------------------------


def class_histograms(
    counts: dict,
    *,
    class_names=None,
    title: str = "Predicted classes of generated images",
    reference: float | None = 0.1,
) -> Figure:
    """Side-by-side bars: for each model (label -> images per predicted class),
    the fraction of its images the evaluation classifier puts in each class.

    ``reference`` draws a dashed line at the fraction every class would get if
    all were equally frequent (0.1 for ten classes); None leaves it out.
    """
    if not counts:
        raise ValueError("class_histograms needs at least one histogram.")
    rows = {label: np.asarray(c, dtype=np.float64) for label, c in counts.items()}
    sizes = {len(c) for c in rows.values()}
    if len(sizes) != 1:
        raise ValueError(
            f"All histograms must have the same number of classes; got {sorted(sizes)}."
        )
    num_classes = sizes.pop()
    names = class_names if class_names is not None else [str(i) for i in range(num_classes)]
    width = 0.8 / len(rows)
    fig = Figure(figsize=(max(6.0, 0.55 * num_classes * max(1, len(rows) / 2)), 3.6))
    ax = fig.subplots()
    positions = np.arange(num_classes)
    for i, (label, c) in enumerate(rows.items()):
        total = c.sum()
        ax.bar(
            positions + (i - (len(rows) - 1) / 2) * width,
            c / total if total else c,
            width=width,
            label=f"{label} (n={int(total):,})",
        )
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="uniform")
    ax.set_xticks(positions)
    ax.set_xticklabels(names)
    ax.set_xlabel("class predicted by the evaluation classifier")
    ax.set_ylabel("fraction of images")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# Points and densities of the plane (notebook 06)
# --------------------------------------------------------------------------


def point_clouds(clouds: dict, *, title: str, limits=None, max_points: int = 3000) -> Figure:
    """Side-by-side scatter plots of 2-D points (name -> array of shape (N, 2)), on the
    same axes limits ``(x_min, x_max, y_min, y_max)``."""
    if not clouds:
        raise ValueError("point_clouds needs at least one set of points.")
    fig = Figure(figsize=(3.6 * len(clouds), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(clouds)))
    for ax, (name, points) in zip(axes, clouds.items(), strict=True):
        points = np.asarray(points)[:max_points]
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5)
        if limits is not None:
            ax.set_xlim(limits[0], limits[1])
            ax.set_ylim(limits[2], limits[3])
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
        ax.set_title(name)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def density_map(xs, ys, density, *, title: str, points=None) -> Figure:
    """A density on a grid (``density[i, j]`` at ``(xs[j], ys[i])``) as a heat map, with
    optional points on top."""
    fig = Figure(figsize=(5.2, 4.4))
    ax = fig.subplots()
    image = ax.imshow(
        np.asarray(density),
        origin="lower",
        extent=(xs[0], xs[-1], ys[0], ys[-1]),
        cmap="magma",
        aspect="equal",
    )
    fig.colorbar(image, ax=ax, label="density p(x)")
    if points is not None:
        points = np.asarray(points)
        ax.scatter(points[:, 0], points[:, 1], s=2, c="cyan", alpha=0.3)
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def warped_grid(before: list, after: list, *, title: str, limits=None) -> Figure:
    """Grid lines (each an array of shape (K, 2)) before and after a map, side by side:
    how a flow bends space."""
    fig = Figure(figsize=(8, 4))
    axes = fig.subplots(1, 2)
    for ax, lines, name in zip(axes, (before, after), ("before", "after"), strict=True):
        for line in lines:
            line = np.asarray(line)
            ax.plot(line[:, 0], line[:, 1], linewidth=0.7, color="tab:blue")
        if limits is not None:
            ax.set_xlim(limits[0], limits[1])
            ax.set_ylim(limits[2], limits[3])
        ax.set_xlabel("coordinate 0")
        ax.set_ylabel("coordinate 1")
        ax.set_title(name)
        ax.set_aspect("equal")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# Measurements over seeds, and pairs of images (notebook 08)
# --------------------------------------------------------------------------


def bars_with_spread(groups: dict, *, xlabel: str, ylabel: str, title: str) -> Figure:
    """Grouped bars of values measured over several seeds: ``groups`` maps a group
    (an x position) to its series (label -> the values over seeds). Each bar is the
    mean, its error bar spans the smallest to the largest value, and a dot marks
    every seed."""
    if not groups:
        raise ValueError("bars_with_spread needs at least one group.")
    labels = list(dict.fromkeys(label for series in groups.values() for label in series))
    width = 0.8 / len(labels)
    fig = Figure(figsize=(max(6.0, 1.3 * len(groups) * max(1, len(labels) / 2)), 3.8))
    ax = fig.subplots()
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, label in enumerate(labels):
        colour = colours[i % len(colours)]
        for g, series in enumerate(groups.values()):
            if label not in series:
                continue
            values = np.asarray(series[label], dtype=np.float64)
            x = g + (i - (len(labels) - 1) / 2) * width
            mean = values.mean()
            first = all(label not in earlier for earlier in list(groups.values())[:g])
            ax.bar(x, mean, width=width, color=colour, alpha=0.75, label=label if first else None)
            ax.errorbar(
                x,
                mean,
                yerr=[[mean - values.min()], [values.max() - mean]],
                color="black",
                capsize=3,
                linewidth=1,
            )
            ax.scatter(np.full(len(values), x), values, s=8, color="black", zorder=3)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def points_with_spread(
    points: dict, *, xlabel: str, ylabel: str, title: str, log_x: bool = False
) -> Figure:
    """One labelled point per entry (label -> (x, values of y over seeds)): the mean of
    y, with a bar from its smallest to its largest value."""
    if not points:
        raise ValueError("points_with_spread needs at least one point.")
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for label, (x, values) in points.items():
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean()
        ax.errorbar(
            x,
            mean,
            yerr=[[mean - values.min()], [values.max() - mean]],
            fmt="o",
            capsize=3,
            label=label,
        )
        ax.annotate(label, (x, mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def image_pairs(rows: dict, *, n: int = 4, title: str, pair_labels=("sample", "nearest")) -> Figure:
    """Pairs of images side by side, one row per entry (label -> (images, partners)):
    each image followed by its partner (a sample and its nearest training image)."""
    if not rows:
        raise ValueError("image_pairs needs at least one row.")
    rows = {label: (_as_images(a), _as_images(b)) for label, (a, b) in rows.items()}
    for label, (a, b) in rows.items():
        if a.shape != b.shape:
            raise ValueError(f"{label}: {a.shape} images and {b.shape} partners must match.")
    n = min(n, *(len(a) for a, _ in rows.values()))
    fig = Figure(figsize=(1.0 * 2 * n + 1.2, 1.15 * len(rows) + 0.8))
    axes = fig.subplots(len(rows), 2 * n, squeeze=False)
    for row, (label, (a, b)) in enumerate(rows.items()):
        for i in range(n):
            for j, image in enumerate((a[i], b[i])):
                ax = axes[row, 2 * i + j]
                ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(pair_labels[j], fontsize=8)
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.supxlabel(f"{n} pairs per row: {pair_labels[0]}, then {pair_labels[1]}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# Trade-offs between families (notebook 07)
# --------------------------------------------------------------------------


LABEL_HEIGHT, LABEL_LINE, LETTER_WIDTH, DOT_RADIUS = 8.0, 10.0, 5.0, 3.5  # points, fontsize 8


def _label_is_free(box, placed, dots, line) -> bool:
    """Whether a label's ``box`` (left, bottom, width, in points) overlaps no ``placed``
    label's line, covers none of the ``dots`` ((x, y) of the other points) and does not
    sit on the horizontal ``line`` (a height, or None)."""
    left, bottom, width = box
    if any(
        left < qx + w and qx < left + width and abs(bottom - qy) < LABEL_LINE
        for qx, qy, w in placed
    ):
        return False
    if line is not None and bottom - 2 < line < bottom + LABEL_LINE:
        return False
    return not any(
        left - DOT_RADIUS < dx < left + width + DOT_RADIUS
        and bottom - DOT_RADIUS < dy < bottom + LABEL_HEIGHT + DOT_RADIUS
        for dx, dy in dots
    )


def _annotate_apart(ax, points: dict, *, level: float | None = None) -> None:
    """Label each point beside it, right of it if there is room, else left of it, else on the
    nearest free line above or below (:func:`_label_is_free`: over no other label, no other
    point's dot, not on the line at ``level``); a label moved off its place gets a thin line
    to its point."""
    ax.autoscale_view()
    to_points = 72.0 / ax.figure.dpi
    where = {
        label: tuple(value * to_points for value in ax.transData.transform(xy))
        for label, xy in points.items()
    }
    line = None if level is None else ax.transData.transform((0, level))[1] * to_points
    placed: list[tuple[float, float, float]] = []  # left, bottom, width of each label
    for label, (x, y) in sorted(points.items(), key=lambda item: item[1][0]):
        (px, py), width = where[label], LETTER_WIDTH * len(label)
        dots = [xy for other, xy in where.items() if other != label]
        tries = [
            (side, 2.0 + lines * LABEL_LINE)
            for lines in (0, -1, 1, -2, 2)
            for side in (6.0, -6.0 - width)
        ]
        side, offset = next(
            (t for t in tries if _label_is_free((px + t[0], py + t[1], width), placed, dots, line)),
            tries[0],
        )
        placed.append((px + side, py + offset, width))
        right = side > 0  # a label on the left ends 6 points before its dot
        ax.annotate(
            label,
            (x, y),
            textcoords="offset points",
            xytext=(6.0 if right else -6.0, offset),
            ha="left" if right else "right",
            fontsize=8,
            arrowprops=dict(arrowstyle="-", color="grey", linewidth=0.6)
            if (side, offset) != tries[0]
            else None,
        )


def labelled_scatter(
    points: dict,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    log_x: bool = False,
    log_y: bool = False,
    ranges: dict | None = None,
    reference: float | None = None,
    reference_label: str = "reference",
) -> Figure:
    """One labelled point per entry (label -> (x, y)): a trade-off between two measures.

    ``ranges`` (label -> (low, high)) draws each point's range in y, such as its spread
    over seeds; ``reference`` a dashed horizontal line (the real-data floor).
    """
    if not points:
        raise ValueError("labelled_scatter needs at least one point.")
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for label, (x, y) in points.items():
        ax.scatter([x], [y], s=40, zorder=3)
        if ranges and label in ranges:
            low, high = ranges[label]
            ax.vlines(x, low, high, color="grey", linewidth=2, alpha=0.6, zorder=2)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=reference_label)
        ax.legend(fontsize=8, loc="best")
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    _annotate_apart(ax, points, level=reference)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig

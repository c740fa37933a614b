import numpy as np
import pytest
from matplotlib.figure import Figure

from tutorial_lib import plotting


def _has_title_and_axis_label(fig):
    """A figure title or axes title, and an x label on the figure or an axes."""
    titles = [fig._suptitle.get_text() if fig._suptitle else ""]
    titles += [ax.get_title() for ax in fig.axes]
    xlabels = [fig._supxlabel.get_text() if fig._supxlabel else ""]
    xlabels += [ax.get_xlabel() for ax in fig.axes]
    return any(titles) and any(xlabels)


def test_image_grid_takes_every_layout():
    rng = np.random.default_rng(0)
    for images in (rng.random((10, 28, 28, 1)), rng.random((10, 28, 28)), rng.random((10, 784))):
        fig = plotting.image_grid(images, title="Samples", ncols=5)
        assert isinstance(fig, Figure)
        assert fig._suptitle.get_text() == "Samples"
        assert len([ax for ax in fig.axes if ax.images]) == 10
        assert _has_title_and_axis_label(fig)


def test_image_grid_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="not square"):
        plotting.image_grid(np.zeros((2, 780)))
    with pytest.raises(ValueError, match="at least one image"):
        plotting.image_grid(np.zeros((0, 28, 28)))


def test_reconstruction_rows():
    x = np.random.default_rng(0).random((12, 28, 28, 1))
    fig = plotting.reconstruction_rows(x, x * 0.5, n=6)
    assert len(fig.axes) == 12
    assert fig.axes[0].get_ylabel() == "original"
    assert _has_title_and_axis_label(fig)
    with pytest.raises(ValueError, match="same shape"):
        plotting.reconstruction_rows(x, x[:3])


def test_loss_curves_pairs_validation_with_training():
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "mae": [0.5, 0.4, 0.3]}
    fig = plotting.loss_curves(history, title="AE")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["loss", "val_loss", "mae"]
    assert ax.get_xlabel() == "epoch" and ax.get_title() == "AE" and ax.get_ylabel()
    with pytest.raises(ValueError, match="empty"):
        plotting.loss_curves({})


def test_latent_scatter_uses_pca_above_two_dimensions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    fig = plotting.latent_scatter(rng.normal(size=(300, 32)), labels)
    ax = fig.axes[0]
    assert "principal component 1" in ax.get_xlabel()
    assert "PCA" in ax.get_title()
    fig2 = plotting.latent_scatter(rng.normal(size=(300, 2)), labels, title="2-D")
    assert fig2.axes[0].get_xlabel() == "z[0]" and fig2.axes[0].get_title() == "2-D"


def test_attention_plots_label_every_token_and_check_shapes():
    rng = np.random.default_rng(0)
    tokens = list("to be\n")
    weights = rng.dirichlet(np.ones(len(tokens)), size=len(tokens))
    fig = plotting.attention_heatmap(weights, query_labels=tokens)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t", "o", "\u2423", "b", "e", "\\n"]
    assert _has_title_and_axis_label(fig)
    with pytest.raises(ValueError, match="do not match"):
        plotting.attention_heatmap(weights[:3], query_labels=tokens)
    heads = plotting.attention_heads(np.stack([weights] * 3), labels=tokens)
    assert len([a for a in heads.axes if a.images]) == 3  # a 2x2 grid, one panel left empty
    assert _has_title_and_axis_label(heads)
    with pytest.raises(ValueError, match="heads"):
        plotting.attention_heads(weights, labels=tokens)


def test_text_panels_line_plot_and_class_histograms():
    fig = plotting.text_panels({"a": "first line\nsecond", "b": "x" * 100}, title="Samples")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    with pytest.raises(ValueError, match="at least one"):
        plotting.text_panels({})
    fig = plotting.line_plot([1, 2, 3], {"fd": [3, 2, 1]}, xlabel="epoch", ylabel="FD", title="t")
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_title() == "t"
    fig = plotting.class_histograms({"GAN": [5, 0, 5], "real": [3, 3, 4]}, reference=1 / 3)
    bars = [patch.get_height() for patch in fig.axes[0].patches]
    assert bars[:3] == [0.5, 0.0, 0.5]  # fractions, not counts
    assert _has_title_and_axis_label(fig)
    with pytest.raises(ValueError, match="same number of classes"):
        plotting.class_histograms({"a": [1, 2], "b": [1, 2, 3]})


def test_measurements_over_seeds_and_image_pairs():
    groups = {
        "100 labels": {"real": [0.6, 0.7, 0.65], "+ GAN": [0.8, 0.82, 0.9]},
        "1000": {"real": [0.9, 0.91, 0.92]},
    }
    fig = plotting.bars_with_spread(groups, xlabel="labels", ylabel="accuracy", title="t")
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert heights[0] == pytest.approx(0.65) and len(heights) == 3  # one bar per series and group
    assert _has_title_and_axis_label(fig)
    fig = plotting.points_with_spread(
        {"GAN": (100.0, [0.9, 0.95, 0.97]), "VAE": (150.0, [0.99, 1.0, 1.0])},
        xlabel="FD",
        ylabel="AUC",
        title="detection",
        log_x=True,
    )
    assert fig.axes[0].get_xscale() == "log" and _has_title_and_axis_label(fig)
    rng = np.random.default_rng(0)
    pairs = {"GAN": (rng.random((5, 28, 28, 1)), rng.random((5, 28, 28)))}
    fig = plotting.image_pairs(pairs, n=3, title="closest pairs")
    assert len([ax for ax in fig.axes if ax.images]) == 6 and _has_title_and_axis_label(fig)
    with pytest.raises(ValueError, match="must match"):
        plotting.image_pairs({"GAN": (rng.random((5, 28, 28)), rng.random((4, 28, 28)))}, title="t")
    for function in (plotting.bars_with_spread, plotting.points_with_spread):
        with pytest.raises(ValueError, match="at least one"):
            function({}, xlabel="x", ylabel="y", title="t")


def test_labelled_scatter_labels_every_point_with_ranges_and_a_reference():
    fig = plotting.labelled_scatter(
        {"gan": (0.05, 40.0), "diffusion": (5.0, 12.0)},
        xlabel="ms per sample (log)",
        ylabel="FD",
        title="Quality against sampling time",
        log_x=True,
        ranges={"gan": (30.0, 55.0)},
        reference=4.8,
        reference_label="real images",
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["gan", "diffusion"]
    assert ax.get_xscale() == "log" and len(ax.collections) == 3  # two points, one range
    assert _has_title_and_axis_label(fig)
    with pytest.raises(ValueError, match="at least one point"):
        plotting.labelled_scatter({}, xlabel="x", ylabel="y", title="t")


def test_curves_of_their_own_length_with_reference_levels():
    fig = plotting.curves(
        {"DCGAN": ([10, 20, 30], [300, 150, 120]), "recipe": ([15, 30], [90, 20])},
        levels={"real images": 2.0},
        xlabel="training seconds",
        ylabel="FD",
        title="Quality against time",
        log_y=True,
    )
    ax = fig.axes[0]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [3, 2, 2]
    assert list(ax.get_lines()[2].get_ydata()) == [2.0, 2.0]  # a horizontal line
    assert ax.get_yscale() == "log" and _has_title_and_axis_label(fig)
    with pytest.raises(ValueError, match="2 x values but 1"):
        plotting.curves({"a": ([1, 2], [1])}, xlabel="x", ylabel="y", title="t")
    with pytest.raises(ValueError, match="at least one"):
        plotting.curves({}, xlabel="x", ylabel="y", title="t")


def test_scatter_labels_overlap_no_label_and_no_other_point():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    points = {"a long first label": (1.0, 1.0), "second": (1.3, 1.15), "third": (1.35, 1.0)}
    points["far away"] = (9.0, 9.0)
    fig = plotting.labelled_scatter(points, xlabel="x", ylabel="y", title="crowded")
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    boxes = {text.get_text(): Text.get_window_extent(text) for text in ax.texts}  # no line
    for label, box in boxes.items():
        for other, xy in points.items():
            if other != label:
                assert not box.contains(*ax.transData.transform(xy)), (label, other)
        for other, other_box in boxes.items():
            if other != label:
                assert not box.overlaps(other_box), (label, other)
    moved = [text for text in ax.texts if text.arrow_patch is not None]
    assert moved, "a label moved off its place has a line to its point"

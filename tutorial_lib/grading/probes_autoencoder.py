"""Probes of exercise 01 (autoencoders): they build or fit the learner's model where it lives
and return what it did as arrays; the checks of :mod:`tutorial_lib.checks.autoencoder`
judge them. A probe holds no reference and decides nothing."""

from __future__ import annotations

import numpy as np


def encoder_files(build_encoder, *, builds: list) -> list:
    """For each build ``{"shape", "latent", "widths"}``: ``build_encoder(shape, latent,
    widths)`` saved as a ``.keras`` file, its bytes as an array (the grader loads it with
    ``safe_mode=True`` and runs it itself), or the type it returned instead of a model."""
    import tempfile
    from pathlib import Path

    import keras

    files = []
    for build in builds:
        model = build_encoder(tuple(build["shape"]), int(build["latent"]), tuple(build["widths"]))
        if not isinstance(model, keras.Model):
            files.append({"type": type(model).__name__})
            continue
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "encoder.keras"
            model.save(path)
            files.append({"type": "Model", "keras": np.frombuffer(path.read_bytes(), np.uint8)})
    return files


def call_keeps_input(function, *, args: list) -> dict:
    """``function(*args)`` and the arguments as they are after the call (did it change them
    in place?)."""
    args = [np.array(a) if isinstance(a, np.ndarray) else a for a in args]
    value = function(*args)
    return {"value": value, "args_after": [a for a in args if isinstance(a, np.ndarray)]}


def pca_report(PCAAutoencoder, *, k: int, train, test, full: int, extra: dict) -> dict:
    """``PCAAutoencoder(k).fit(train)``: does fit return the model, the codes of ``test`` and
    of ``train``, their decoding, the codes of each of ``extra`` (name -> images); and the
    round trip of ``test`` through ``PCAAutoencoder(full)`` fitted on ``train``."""
    model = PCAAutoencoder(k)
    fitted = model.fit(train)
    report = {"returns_itself": fitted is model, "returned": type(fitted).__name__}
    codes = np.asarray(model.encode(test))
    report["codes"] = codes
    report["decoded"] = np.asarray(model.decode(codes))
    report["train_codes"] = np.asarray(model.encode(train))
    report["extra"] = {
        name: {"codes": np.asarray(c := model.encode(x)), "decoded": np.asarray(model.decode(c))}
        for name, x in extra.items()
    }
    whole = PCAAutoencoder(full)
    whole.fit(train)
    report["round_trip"] = np.asarray(whole.decode(whole.encode(test)))
    return report


PROBES = {
    "encoder_files": encoder_files,
    "call_keeps_input": call_keeps_input,
    "pca_report": pca_report,
}

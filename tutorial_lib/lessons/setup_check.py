"""Notebook 00's sanity training: a plain classifier of digits that shows TensorFlow trains
on this machine. :data:`SIZES` holds its sizes per profile.
"""

# Per profile: the training digits (None: all), epochs, batch and the hidden layer's width.
SIZES = {
    "fast": {"train_examples": 512, "epochs": 2, "batch_size": 64, "units": 32},
    "cpu": {"train_examples": 20_000, "epochs": 5, "batch_size": 128, "units": 64},
    "gpu": {"train_examples": None, "epochs": 30, "batch_size": 256, "units": 128},
}

"""tutorial_lib: the companion package of the genai-notebooks series.

The notebooks explain; this package does the work. One module per concern:

* :mod:`tutorial_lib.profiles` -- the ``TUTORIAL_PROFILE`` switch (fast, cpu, gpu)
* :mod:`tutorial_lib.device` -- GPUs, mixed precision, distribution strategy, report
* :mod:`tutorial_lib.data` -- MNIST, Fashion-MNIST, Tiny Shakespeare, tf.data pipelines
* :mod:`tutorial_lib.training` -- seeding, resumable fit, sample-grid callback, run folders
* :mod:`tutorial_lib.plotting` -- image grids, reconstructions, loss curves, latent scatter
* :mod:`tutorial_lib.cli` -- ``python -m tutorial_lib info|download|train|sample``

and one module per model family (:mod:`tutorial_lib.autoencoder`, ...).
"""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) out of
# notebooks and test logs; real errors still show. Set before TensorFlow loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

"""The lessons' own code: each lesson's experiments, their sizes and their demonstration
models, one module per lesson that needs one. None of them is a model of the registry
(:mod:`tutorial_lib.families`); the model families' modules hold only models.

* :mod:`~tutorial_lib.lessons.setup_check` -- notebook 00: the sizes of its sanity training;
* :mod:`~tutorial_lib.lessons.gan_failure_modes` -- notebook 03: mode collapse and a
  discriminator that wins, measured;
* :mod:`~tutorial_lib.lessons.gpt_generation` -- notebook 04b: generation speed with and
  without the key-value cache;
* :mod:`~tutorial_lib.lessons.plane_flows` -- notebook 06 and exercise 06: a flow on the
  plane, its density and its bent grid.

Notebooks 07 and 08 have larger modules of their own at the package's top level, since the
benchmark and the exercises use them too: :mod:`tutorial_lib.compare` and
:mod:`tutorial_lib.audit`.
"""

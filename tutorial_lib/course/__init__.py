"""The course's own tooling: what makes, checks and presents the lessons, apart from the
models they teach.

* :mod:`~tutorial_lib.course.quiz` -- the knowledge checks, their questions as data in
  ``quizzes/``;
* :mod:`~tutorial_lib.course.pretrain` -- record every lesson's runs and results into a
  store (``python -m tutorial_lib pretrain``);
* :mod:`~tutorial_lib.course.fingerprints` -- each shipped model checked again;
* :mod:`~tutorial_lib.course.figures` -- the measured figures of the lessons' prose, from
  the record;
* :mod:`~tutorial_lib.course.slides` -- reveal.js decks from the executed lessons;
* :mod:`~tutorial_lib.course.notebook_tools` -- clean notebooks, refresh checked outputs,
  the exercises' learner copies;
* ``tables/`` -- the static tables as data: the seeds' comparison tables and the
  literature's likelihoods.

Grading has its own package (:mod:`tutorial_lib.grading`), and so do the exercises'
checks (:mod:`tutorial_lib.checks`).
"""

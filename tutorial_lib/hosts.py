"""Training on more than one host: one process per machine, one model, on JAX.

Data parallelism across machines works like data parallelism across the GPUs of one
machine (:func:`tutorial_lib.device.get_strategy`), with one more step first:

1. **Join.** Every host starts the *same* script, one process each. Before any JAX
   computation, :func:`join` connects the processes through a *coordinator*
   (process 0's address and a free port). From then on ``jax.devices()`` lists the
   devices of every process, and Keras's ``DataParallel`` spreads each batch over all
   of them: every process holds a full copy of the weights, computes on its own rows of
   the batch, and the gradients are summed across processes (an *all-reduce*) so that
   every copy takes the same step.
2. **Feed your own rows.** Every process builds the same global pipeline (same data,
   same seed) and gives ``fit`` only *its* part of every batch, :func:`shard_batches`;
   Keras puts the parts side by side, process 0's rows first
   (``jax.make_array_from_process_local_data``), so each step computes on exactly the
   batch a one-process run would. (Keras's ``DataParallel`` can split a ``tf.data``
   pipeline itself, but refuses any other kind across processes unless told
   ``auto_shard_dataset = False``: on JAX this package's pipelines are NumPy ones.)

On CPUs the all-reduce needs a library that sends arrays between processes: JAX's
``gloo`` collectives, which :func:`join` switches on if nothing else is chosen. (Without
them, the first step fails with "Multiprocess computations aren't implemented on the
CPU backend".) GPUs exchange gradients through NCCL; Keras still uses the CPUs' collectives
at the join, to agree on one random seed when none is set.
"""

from __future__ import annotations

import dataclasses
import os

import keras

COORDINATOR_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_ENV = "KERAS_DISTRIBUTION_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class Hosts:
    """Where this process stands among the processes that train together.

    Attributes:
        process_id: this process's number, 0 (the coordinator) to ``num_processes - 1``.
        num_processes: how many processes train together.
        local_devices: how many devices this process computes on.
        devices: how many devices all of them compute on (each batch is split this many ways).
    """

    process_id: int
    num_processes: int
    local_devices: int
    devices: int


def _from_env(value, name: str, convert=str):
    """``value`` if given, else the environment variable ``name`` (converted), else None."""
    if value is not None:
        return value
    text = os.environ.get(name, "").strip()
    return convert(text) if text else None


def join(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> Hosts:
    """Join this process to the others that train the same model, before any computation.

    Call it first thing in the script, in every process, before anything asks JAX for
    its devices or computes with it. It blocks until every process has joined (JAX waits
    up to five minutes for the others).

    Args:
        coordinator: ``"host:port"`` of process 0, the same in every process (process 0
            listens there; pick a free port). Default: ``KERAS_DISTRIBUTION_JOB_ADDRESSES``
            (also accepts Keras's comma-separated list of every process's address, whose
            first entry is the coordinator).
        num_processes: how many processes train together. Default:
            ``KERAS_DISTRIBUTION_NUM_PROCESSES``.
        process_id: this process's number, ``0`` on the coordinator's host. Default:
            ``KERAS_DISTRIBUTION_PROCESS_ID``.

    Returns:
        A :class:`Hosts`: this process's number and how many devices there are. With one
        process (``num_processes=1``) nothing is joined: a plain run.

    Raises:
        RuntimeError: the Keras backend is not JAX, or JAX has already started computing.
        ValueError: the coordinator, the number of processes or this process's number is
            missing or out of range.
    """
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"Training on more than one host needs the JAX backend; Keras runs on "
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=jax in the environment of "
            "every process before Python starts (export KERAS_BACKEND=jax), and run again."
        )
    import jax

    coordinator = _from_env(coordinator, COORDINATOR_ENV)
    num_processes = _from_env(num_processes, NUM_PROCESSES_ENV, int)
    process_id = _from_env(process_id, PROCESS_ID_ENV, int)
    if jax.distributed.is_initialized():  # joined already (a second call): say where we are
        return current()
    if num_processes == 1:
        return current()
    missing = [
        f"{what} (argument {arg}, or {env})"
        for what, arg, env, value in (
            ("the coordinator's address", "coordinator", COORDINATOR_ENV, coordinator),
            ("the number of processes", "num_processes", NUM_PROCESSES_ENV, num_processes),
            ("this process's number", "process_id", PROCESS_ID_ENV, process_id),
        )
        if value is None
    ]
    if missing:
        raise ValueError(
            "To train on more than one host every process needs "
            + "; ".join(missing)
            + ". For example, on every host: KERAS_DISTRIBUTION_JOB_ADDRESSES=10.0.0.1:1234 "
            "KERAS_DISTRIBUTION_NUM_PROCESSES=2, and KERAS_DISTRIBUTION_PROCESS_ID=0 on "
            "10.0.0.1, 1 on the other host."
        )
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id must be one of 0 to {num_processes - 1} (num_processes="
            f"{num_processes}); got {process_id}. Give every process its own number."
        )
    if ":" not in coordinator.split(",")[0]:
        raise ValueError(
            f"The coordinator's address needs a port, as in 10.0.0.1:1234; got {coordinator!r}."
        )
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        raise RuntimeError(
            "JAX has already started computing in this process, so it can no longer join "
            "others. Call tutorial_lib.hosts.join() first, before device.setup() and before "
            "building any model (in a notebook: restart the kernel and run it first)."
        )
    # The all-reduce of the CPUs (and Keras's agreement on a seed at the join) needs
    # cross-process collectives: gloo. Recent JAX (0.10) picks it by default; make sure.
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(coordinator, num_processes, process_id)
    return current()


def current() -> Hosts:
    """This process's :class:`Hosts` (one process of one, before or without :func:`join`)."""
    if keras.backend.backend() != "jax":
        return Hosts(process_id=0, num_processes=1, local_devices=1, devices=1)
    import jax

    return Hosts(
        process_id=jax.process_index(),
        num_processes=jax.process_count(),
        local_devices=jax.local_device_count(),
        devices=jax.device_count(),
    )


# --------------------------------------------------------------------------
# Each process feeds its own rows of every batch
# --------------------------------------------------------------------------


def local_rows(batch, *, process_id: int | None = None, num_processes: int | None = None):
    """This process's rows of a global ``batch``: the ``process_id``-th of
    ``num_processes`` equal parts (default: this process's place, :func:`current`).

    Keras puts the processes' parts back side by side, process 0's first, so the step
    computes on exactly the global batch a one-process run would. ``batch`` may be an
    array or a tuple of arrays (inputs and targets), cut alike.
    """
    if process_id is None or num_processes is None:
        hosts = current()
        process_id, num_processes = hosts.process_id, hosts.num_processes

    def cut(array):
        rows = len(array)
        if rows % num_processes:
            raise ValueError(
                f"A batch of {rows} rows does not split evenly across {num_processes} "
                f"processes; choose a batch size divisible by {num_processes} (and by "
                "the number of devices)."
            )
        share = rows // num_processes
        return array[process_id * share : (process_id + 1) * share]

    return keras.tree.map_structure(cut, batch)


class ProcessShard(keras.utils.PyDataset):
    """A ``PyDataset`` of global batches seen from one process: its rows of each batch.

    Every process builds the same global pipeline (same data, same seed, same order) and
    wraps it; each then gives Keras only :func:`local_rows` of every batch.
    """

    def __init__(self, dataset: keras.utils.PyDataset, hosts: Hosts):
        super().__init__()
        self.dataset, self.hosts = dataset, hosts

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def __len__(self):
        return len(self.dataset)

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()

    def __getitem__(self, index):
        return local_rows(
            self.dataset[index],
            process_id=self.hosts.process_id,
            num_processes=self.hosts.num_processes,
        )


class ArrayBatchesInOrder(keras.utils.PyDataset):
    """Arrays (or a tuple of arrays, cut alike) in batches of ``batch_size``, in order:
    the batches ``fit`` and ``evaluate`` make of arrays themselves (unshuffled, as for
    validation data), with the last batch cut down to a multiple of ``multiple`` rows
    (at most ``multiple - 1`` rows left out) so that it splits evenly."""

    def __init__(self, arrays, batch_size: int = 32, multiple: int = 1):
        super().__init__()
        self.arrays, self.batch_size = arrays, int(batch_size)
        rows = min(len(a) for a in keras.tree.flatten(arrays))
        self.rows = rows // multiple * multiple
        if self.rows == 0:
            raise ValueError(f"{rows} rows make no batch to split {multiple} ways.")

    def __len__(self):
        return -(-self.rows // self.batch_size)

    def __getitem__(self, index):
        start = index * self.batch_size
        end = min(start + self.batch_size, self.rows)
        return keras.tree.map_structure(lambda a: a[start:end], self.arrays)


def shard_batches(data, *, batch_size: int = 32):
    """What this process feeds ``fit`` (or ``validation_data``) of the global ``data``.

    Under a distribution across processes (:func:`join`, then a ``DataParallel`` over
    every process's devices in force) each process gives Keras its own part of every
    global batch, and Keras puts the parts side by side; anywhere else (one process, or
    no distribution in force) ``data`` comes back as it is.

    * A ``keras.utils.PyDataset`` of global batches (as :func:`tutorial_lib.data.image_dataset`
      makes on JAX): a :class:`ProcessShard`, this process's rows of every batch.
    * A ``tf.data`` pipeline of global batches: split the way Keras's ``DataParallel``
      splits one itself (its ``distribute_tf_dataset``).
    * An array, or a tuple of arrays (validation data): cut into the batches of
      ``batch_size`` that ``fit`` would make of them (32, Keras's default), then this
      process's rows of each. The global batches are the one-process run's, so a model
      that draws random numbers per batch (a VAE's codes) draws the same ones. The last
      batch is cut down to a multiple of the number of devices (fewer than that many
      rows left out), so that it splits evenly.
    * ``None`` stays ``None``.

    Every process must build the same global ``data`` (same examples, same seed).
    """
    hosts = current()
    distribution = keras.distribution.distribution()
    if data is None or hosts.num_processes == 1 or distribution is None:
        return data
    if isinstance(data, ProcessShard):
        return data
    if isinstance(data, keras.utils.PyDataset):
        return ProcessShard(data, hosts)
    if type(data).__module__.startswith("tensorflow") and hasattr(data, "rebatch"):
        return distribution.distribute_tf_dataset(data)
    if all(hasattr(a, "shape") and hasattr(a, "__len__") for a in keras.tree.flatten(data)):
        return ProcessShard(ArrayBatchesInOrder(data, batch_size, hosts.devices), hosts)
    raise TypeError(
        f"Cannot split {type(data).__name__} between {hosts.num_processes} processes: give "
        "fit a keras.utils.PyDataset, a tf.data pipeline or arrays, or split it yourself "
        "(tutorial_lib.hosts.local_rows gives this process's rows of a batch)."
    )

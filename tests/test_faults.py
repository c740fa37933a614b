"""Nothing lost: a run folder, a sampling file and the store survive kills, a full disk,
two writers and huge requests.

The kills are real: a subprocess sends itself SIGKILL at a chosen point (no ``finally``
runs, as after a power cut or the OOM killer), or the test kills it from outside; then
the same command runs again here. The killed subprocesses are forked from one driver that
imports TensorFlow once (each would otherwise spend seconds importing it). The model is a tiny family registered for the test
(a two-layer network on 64 numbers, three epochs) so that every fault costs seconds;
the store is a copy of one small shipped lesson.
"""

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tutorial_lib import checkpoints, cli, families, runs, safe_io, training

TINY_FAMILY = '''
"""A family for fault tests: a tiny regression network, resumable, three epochs."""
import dataclasses, os, signal
import numpy as np, keras
from tutorial_lib import training

@dataclasses.dataclass(frozen=True)
class TinyConfig:
    epochs: int = 3

CONFIGS = {
    name: {profile: TinyConfig() for profile in ("fast", "cpu", "gpu")}
    for name in ("tiny", "tiny_images")
}
HOOKS = []  # Keras callbacks added to the training (kill points)
EVALUATE_HOOKS = []  # called when the model is evaluated
SAMPLE_HOOKS = []  # called before each batch of samples

def build_model(config, *, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)], name="tiny"
    )
    model.compile("adam", "mse", run_eagerly=True)  # 12 steps: no graph worth tracing
    return model

def _data():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)

def train_model(config, *, dataset, profile, seed=0, run_dir=None, callbacks=None):
    x, y = _data()
    model = build_model(config, seed=seed)
    kwargs = dict(epochs=config.epochs, batch_size=16, verbose=0, shuffle=False,
                  callbacks=[*(callbacks or []), *HOOKS])
    if run_dir is None:
        history = model.fit(x, y, **kwargs)
    else:
        history = training.fit_resumable(model, x, y=y, run_dir=run_dir, **kwargs)
    return training.Trained(model, history.history, 64 * config.epochs)

def evaluate(model, config, *, dataset, profile):
    for hook in EVALUATE_HOOKS:
        hook()
    x, y = _data()
    return {"test_mse": float(np.mean((model.predict(x, verbose=0) - y) ** 2))}

def sample(model, num, *, seed=0):
    for hook in SAMPLE_HOOKS:
        hook()
    return np.random.default_rng(seed).random((num, 28, 28, 1)).astype("float32")

def preview(model, config, *, dataset, profile):
    return np.zeros((8, 28, 28, 1), "float32"), "tiny"

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class KillAt(keras.callbacks.Callback):
    """SIGKILL in the middle of epoch ``epoch`` (after ``batch`` batches of it)."""
    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.now = epoch, batch, -1
    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.now == self.epoch and batch + 1 == self.batch:
            die()

def register():
    from tutorial_lib import families
    for name, samples in (("tiny", "none"), ("tiny_images", "images")):
        families.FAMILIES[name] = families.Family(
            name=name, module="tiny_family", title="tiny", lesson="00_setup", samples=samples
        )
'''

# The subprocess: import TensorFlow once, register the family, then fork one child per kill
# point (argv: a folder for the children's outputs, then JSON {point: [folder, *extra]});
# each child arms its kill point and runs one command. The children's pids are printed
# first, their exit codes (JSON) last.
DRIVER = '''
import json, os, shutil, sys, time, traceback
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
import tiny_family as tiny
tiny.register()
from tutorial_lib import checkpoints, cli, runs, safe_io

def after(calls, test, real):
    """``real`` until ``test(*args)`` holds for the ``calls``-th time; then SIGKILL."""
    seen = []
    def patched(*args, **kwargs):
        if test(*args):
            seen.append(1)
            if len(seen) == calls:
                tiny.die()
        return real(*args, **kwargs)
    return patched

def run(point, folder, *extra):
    train = ["train", "tiny", "--profile", "fast", "--out", str(folder)]
    if point == "saving":  # the model and picture written, the record not yet
        write = safe_io.atomic_write_text
        safe_io.atomic_write_text = after(1, lambda p, t: Path(p).name == "metrics.json", write)
    elif point == "evaluating":  # holds the folder while it evaluates, until killed
        def hold():
            (folder.parent / "evaluating").write_text(str(os.getpid()))
            time.sleep(120)
        tiny.EVALUATE_HOOKS.append(hold)
    elif point == "sampling":  # a trained run, 5 images saved; killed at the third batch of 3000
        if cli.main(train) or cli.main(["sample", "tiny_images", "--run", str(folder), "--num",
                                        "5", "--out", extra[0]]):
            return 2
        runs.IMAGE_CHUNK = 500
        calls = []
        tiny.SAMPLE_HOOKS.append(lambda: calls.append(1) or (len(calls) == 3 and tiny.die()))
        train = ["sample", "tiny_images", "--run", str(folder), "--num", "3000", "--out", extra[0]]
    elif point == "recording":  # a lesson of the store recorded again, killed mid-training
        os.environ["TUTORIAL_PRETRAINED_DIR"] = str(folder)
        lesson = checkpoints.Lesson(extra[0], "fast", pretrained="record")
        lesson.note("numbers", {"answer": 42})
        tiny.HOOKS.append(tiny.KillAt(epoch=1, batch=2))
        lesson.train("tiny")
        return 3  # not reached
    elif point == "full_disk":  # the disk fills up during the second epoch
        def fill(epoch, logs=None):
            if epoch == 1:
                try:
                    with open(folder.parent / "filler", "wb") as handle:
                        while True:
                            handle.write(bytes(65536))
                            handle.flush()
                except OSError:
                    pass
        import keras
        tiny.HOOKS.append(keras.callbacks.LambdaCallback(on_epoch_begin=fill))
    return cli.main(train)

def child(point, folder, extra, logs):
    for fd, name in ((1, "out"), (2, "err")):
        with open(logs / f"{point}.{name}", "w") as file:
            os.dup2(file.fileno(), fd)
    code = 4
    try:
        code = run(point, Path(folder), *extra)
    except SystemExit as done:
        code = done.code
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 5)

logs, points = Path(sys.argv[1]), json.loads(sys.argv[2])
children = {}
for point, (folder, *extra) in points.items():
    pid = os.fork()
    if pid == 0:
        child(point, folder, extra, logs)
    children[pid] = point
    print(point, pid, flush=True)
print("started", flush=True)
codes = {}
while children:
    pid, status = os.wait()
    point = children.pop(pid)
    codes[point] = os.waitstatus_to_exitcode(status)
    if point == "full_disk":  # out of the tmpfs, for the same command to resume it
        shutil.copytree(points[point][0], logs / "run", symlinks=True)
print(json.dumps(codes), flush=True)
'''


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny family, registered here too (the resumed commands run in this process)."""
    (tmp_path / "tiny_family.py").write_text(TINY_FAMILY)
    (tmp_path / "driver.py").write_text(DRIVER)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tiny_family", None)
    import tiny_family

    for name in ("tiny", "tiny_images"):
        monkeypatch.delitem(families.FAMILIES, name, raising=False)
    tiny_family.register()
    yield tiny_family
    for name in ("tiny", "tiny_images"):
        families.FAMILIES.pop(name, None)
    sys.modules.pop("tiny_family", None)


def _start(tmp_path: Path, points: dict) -> subprocess.Popen:
    """The driver, forking one child per point, in a 4 MiB tmpfs of its own (a private mount
    namespace) with the "full_disk" point added, where such namespaces are allowed."""
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {**os.environ, "TUTORIAL_PROFILE": "fast", "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, str(tmp_path / "driver.py"), str(logs)]
    if _private_mounts_work():
        disk = tmp_path / "disk"
        disk.mkdir()
        points = {**points, "full_disk": [str(disk / "run")]}
        env["DISK"] = str(disk)
        argv = ["unshare", "--mount", "--map-root-user", "bash", "-c", FULL_DISK, "disk", *argv]
    return subprocess.Popen(
        [*argv, json.dumps({k: [str(v) for v in vs] for k, vs in points.items()})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its group: the driver and every child it forked
    )


def _lesson_copy(root: Path) -> str:
    """The smallest shipped lesson, with its checksums, copied into ``root/fast``."""
    shipped = checkpoints.STORE / "cpu"
    sums = checkpoints.read_checksums(shipped)
    lessons = [p for p in shipped.iterdir() if (p / checkpoints.RECORD_FILE).is_file()]
    if not lessons or not sums:
        pytest.skip("no shipped store")
    lesson = min(lessons, key=lambda p: sum(f.stat().st_size for f in p.rglob("*")))
    shutil.copytree(lesson, root / "fast" / lesson.name)
    mine = {rel: digest for rel, digest in sums.items() if rel.startswith(f"{lesson.name}/")}
    checkpoints._write_sums(root / "fast", mine, checkpoints.CHECKSUMS_FILE)
    return lesson.name


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _history_epochs(run: Path) -> list[str]:
    with open(run / training.HISTORY_FILE) as handle:
        return [line.split(",")[0] for line in handle][1:]


def _is_complete(run: Path) -> dict:
    assert training.run_state(run) == "complete"
    left = {p.name for p in run.iterdir()} & {
        training.CLOCK_FILE,
        training.BACKUP_DIR,
        "backup.new",
        training.TRAINED_FILE,
        training.TRAINED_MODEL,
    }
    assert not left, f"left behind in a complete run: {left}"
    assert runs.load(run).model is not None
    return json.loads((run / training.METRICS_FILE).read_text())


# A 4 MiB file system in a private mount namespace, filled up during the second epoch;
# the driver copies the run folder out for the same command to resume it here, with room.
FULL_DISK = '''mount -t tmpfs -o size=4m tmpfs "$DISK" || exit 77
exec "$@"'''


def _private_mounts_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--mount", "--map-root-user", "mount", "-t", "tmpfs", "tmpfs", "/mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def _check_full_disk(tmp_path: Path, code: int, capsys) -> None:
    """One line that names the folder and says what to do; a folder that resumes."""
    logs = tmp_path / "logs"
    err = (logs / "full_disk.err").read_text()
    assert code == 1, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err and "Segmentation" not in err, err[-3000:]
    assert errors[0].startswith(f"error: the disk holding {tmp_path / 'disk' / 'run'} is full")
    assert "run the same training again" in errors[0]
    run = logs / "run"
    assert training.run_state(run) == "training" and (run / "backup").is_dir()
    assert cli.main(["train", "tiny", "--profile", "fast", "--out", str(run)]) == 0
    assert "resuming the interrupted run" in capsys.readouterr().out
    assert _is_complete(run)["train_legs"] == 2


def test_every_kill_leaves_the_last_state_and_the_same_command_resumes(
    tiny, tmp_path, monkeypatch, capsys
):
    """SIGKILL while training (mid-epoch, in a lesson that pretrain records), while
    evaluating, while saving and while sampling; a second `train` into a folder that
    another process is writing; and a disk that fills up (a tiny tmpfs, where private
    mount namespaces are allowed; simulated in the next test). The killed processes run at
    once (forked from one that imported TensorFlow once), then each interrupted state is
    checked and resumed here."""
    monkeypatch.setenv("TUTORIAL_PROFILE", "fast")
    sampled, npy = tmp_path / "sampled", tmp_path / "samples.npy"
    store = tmp_path / "store"
    lesson = _lesson_copy(store)
    shipped = _tree(store / "fast" / lesson)

    points = {
        "saving": [tmp_path / "c" / "run"],
        "evaluating": [tmp_path / "d" / "run"],
        "sampling": [sampled, npy],  # trains, saves 5 images, then is killed sampling 3000
        "recording": [store, lesson],
    }
    driver = _start(tmp_path, points)
    try:
        pids = {}
        for line in iter(driver.stdout.readline, "started\n"):
            assert line, driver.communicate()[1][-3000:]  # the driver ended before forking
            point, pid = line.split()
            pids[point] = int(pid)

        # A second writer while "evaluating" holds its run folder: refused at once, by name.
        marker = tmp_path / "d" / "evaluating"
        deadline = time.time() + 240
        while not marker.exists() and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), (tmp_path / "logs" / "evaluating.err").read_text()[-2000:]
        held = points["evaluating"][0]
        capsys.readouterr()
        assert cli.main(["train", "tiny", "--profile", "fast", "--out", str(held)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(held) in err
        assert f"process {pids['evaluating']}" in err and "another folder" in err
        os.kill(pids["evaluating"], signal.SIGKILL)  # killed from outside, mid-evaluation

        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-3000:]
        codes = json.loads(out.splitlines()[-1])
        assert set(codes) == set(pids)
        for point in points:
            log = (tmp_path / "logs" / f"{point}.err").read_text()
            assert codes[point] == -signal.SIGKILL, f"{point}: {codes[point]} {log[-2000:]}"
    finally:  # nothing left running if an assertion fails
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    if "full_disk" in codes:  # absent where no private mount namespace is allowed
        _check_full_disk(tmp_path, codes["full_disk"], capsys)

    # Killed while evaluating or saving: the trained model is kept; no training again.
    for point in ("evaluating", "saving"):
        run = points[point][0]
        assert training.run_state(run) == "evaluate", point
        trained = json.loads((run / training.TRAINED_FILE).read_text())["record"]
        with pytest.raises(training.RunError, match="run the same train command again"):
            runs.load(run)
        assert cli.main(["train", "tiny", "--profile", "fast", "--out", str(run)]) == 0
        assert "at evaluate: its training finished" in capsys.readouterr().out
        record = _is_complete(run)
        assert record["train_seconds"] == trained["train_seconds"], "trained once, not twice"
        assert record["train_legs"] == 1 and record["test_mse"] is not None

    # Killed while sampling: the earlier file is intact; the command again writes it all.
    assert np.load(npy).shape == (5, 28, 28, 1)
    assert [p.name for p in tmp_path.glob("[!.]*.npy")] == ["samples.npy"]
    argv = ["sample", "tiny_images", "--run", str(sampled), "--num", "3000", "--out", str(npy)]
    assert cli.main(argv) == 0
    assert np.load(npy).shape == (3000, 28, 28, 1)
    assert not list(tmp_path.glob(".tmp-*")), "the killed writer's leftovers are cleared"

    # Killed mid-epoch while a lesson was recorded: the shipped lesson is untouched and
    # loads; the run in the staging folder holds the backup of its finished epoch; the
    # recording again resumes it.
    monkeypatch.setenv(checkpoints.STORE_ENV, str(store))
    assert _tree(store / "fast" / lesson) == shipped
    checkpoints.Lesson(lesson, "fast", pretrained=True).check()
    run = checkpoints.staging_dir("fast", lesson) / "tiny"
    assert training.run_state(run) == "training" and _history_epochs(run) == ["0"]
    assert json.loads((run / "backup" / training.BACKUP_METADATA).read_text())["epoch"] == 1
    again = checkpoints.Lesson(lesson, "fast", pretrained="record")
    assert "resuming the interrupted training" in capsys.readouterr().out
    assert again.train("tiny").record["train_legs"] == 2
    assert _history_epochs(run) == ["0", "1", "2"]
    again.install()
    installed = checkpoints.Lesson(lesson, "fast", pretrained=True)
    installed.check()
    assert installed.train("tiny").record["train_legs"] == 2


def test_a_simulated_full_disk_while_backing_up_keeps_the_last_backup(tiny, tmp_path, capsys):
    """ENOSPC from the backup of the second epoch (simulated): one line, a whole backup of
    the first epoch, and the same command resumes from it once there is room, past the
    half-swapped backup a writer killed at that point leaves (``backup.new``); ENOSPC
    again while the finished run is saved: one line, and the next call only saves."""
    run = tmp_path / "run"
    argv = ["train", "tiny", "--profile", "fast", "--out", str(run)]
    real = safe_io.swap_in
    calls = []

    def full(staging, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(staging))
        return real(staging, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(safe_io, "swap_in", full)
        assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the disk holding {run} is full" in err
    assert not (run / "backup.new").exists()
    assert json.loads((run / "backup" / training.BACKUP_METADATA).read_text())["epoch"] == 1
    assert _history_epochs(run) == ["0", "1"]  # logged before its backup failed
    shutil.copytree(run / "backup", run / "backup.new")  # what a kill there leaves
    (run / "backup.new" / training.BACKUP_METADATA).write_text('{"epoch": 2}')

    def full_at_the_end(*args, **kwargs):  # and the disk is full again when it saves
        raise OSError(errno.ENOSPC, "No space left on device", str(run / "model.keras"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "save_run", full_at_the_end)
        assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "full" in err and "The trained model is kept there" in err
    assert training.run_state(run) == "evaluate"
    assert cli.main(argv) == 0
    assert "at evaluate" in capsys.readouterr().out
    assert _is_complete(run)["train_legs"] == 2
    assert _history_epochs(run) == ["0", "1", "2"], "epoch 1 trained again, logged once"


def test_an_unwritable_folder_says_so_in_one_line(tiny, tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root: permissions are not enforced, so simulate them

        def refuse(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self.folder))

        monkeypatch.setattr(safe_io.FolderLock, "__enter__", refuse)
    try:
        assert cli.main(["train", "tiny", "--profile", "fast", "--out", str(locked / "run")]) == 1
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "permission denied" in err and str(locked / "run") in err
    read_only = OSError(errno.EROFS, "Read-only file system", "/media/cd")
    assert safe_io.describe(read_only) == (
        "/media/cd is on a read-only file system; choose a folder you can write."
    )


def test_a_backup_that_holds_only_part_of_the_state_is_refused(tiny, tmp_path):
    """A backup whose optimizer state does not fit: Keras would go on without it."""
    run = tmp_path / "run"
    model = tiny.build_model(tiny.CONFIGS["tiny"]["fast"])
    (run / "backup").mkdir(parents=True)
    model.save(run / "backup" / training.BACKUP_MODEL)  # never trained: no optimizer state
    (run / "backup" / training.BACKUP_METADATA).write_text('{"epoch": 1}')
    x, y = tiny._data()
    fresh = tiny.build_model(tiny.CONFIGS["tiny"]["fast"])
    fresh.fit(x, y, epochs=1, verbose=0)  # built optimizer with variables to restore
    fresh.optimizer.build(fresh.trainable_variables)
    with pytest.raises(training.RunError, match="only part of the training state") as info:
        training.fit_resumable(fresh, x, y=y, run_dir=run, epochs=3, verbose=0)
    assert "\n" not in str(info.value) and f"Delete {run}" in str(info.value)


def test_huge_requests_are_refused_or_streamed_in_bounded_memory(tiny, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert cli.main(["train", "tiny", "--profile", "fast", "--out", str(run)]) == 0
    loaded = runs.load(run)
    loaded.name = "tiny_images"
    with pytest.raises(runs.RequestTooLarge, match="at most") as info:
        loaded.sample(10**9)  # 5.8 TiB of float32 images in memory
    assert "sample_to_file" in str(info.value) and "available here" in str(info.value)

    monkeypatch.setattr(safe_io, "free_disk", lambda path: 10 * 2**20)
    with pytest.raises(runs.RequestTooLarge, match="free, enough for 3,343"):
        runs.sample_to_file(loaded, 10**9, tmp_path / "big.npy")
    monkeypatch.setattr(safe_io, "free_disk", lambda path: 2**50)

    sizes, lines = [], []
    monkeypatch.setattr(runs, "IMAGE_CHUNK", 400)
    monkeypatch.setattr(runs, "PROGRESS_SECONDS", 0.0)
    tiny.SAMPLE_HOOKS.append(lambda: sizes.append(0))
    real = tiny.sample
    monkeypatch.setattr(tiny, "sample", lambda m, n, **k: sizes.append(n) or real(m, n, **k))
    path = runs.sample_to_file(loaded, 2500, tmp_path / "s.npy", seed=3, report=lines.append)
    images = np.load(path, mmap_mode="r")
    assert images.shape == (2500, 28, 28, 1) and images.dtype == np.float32
    assert max(sizes) == 400, "never more than one chunk of images in memory"
    np.testing.assert_array_equal(images[:400], real(None, 400, seed=3))
    assert lines and "left" in lines[-1] and "/ 2,500 images" in lines[-1]

    # Time: measured on the second chunk, refused before the rest runs.
    clock = iter(range(0, 10**9, 30))
    monkeypatch.setattr(runs, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    with pytest.raises(runs.RequestTooLarge, match="limit is 60 min") as info:
        runs.sample_to_file(loaded, 10**7, tmp_path / "slow.npy")
    assert "at a time" in str(info.value) and not (tmp_path / "slow.npy").exists()


def test_a_text_streams_in_chunks_that_continue_the_text(tiny, tmp_path, monkeypatch):
    """The text path: chunks continue from the end of the text so far; a month is refused."""
    monkeypatch.setattr(runs, "TEXT_CHUNK", 5)
    prompts = []

    def write_digits(model, num, *, seed=0, prompt="\n"):
        prompts.append(prompt)
        return "".join(str(len(prompts) % 10) for _ in range(num))

    module = types.ModuleType("text_family")
    module.sample = write_digits
    monkeypatch.setitem(sys.modules, "text_family", module)
    family = families.Family(
        name="texty", module="text_family", title="t", lesson="00", samples="text"
    )
    monkeypatch.setitem(families.FAMILIES, "texty", family)
    run = runs.Run("texty", None, type("M", (), {"context": 4})(), {}, {})
    out = runs.sample_to_file(run, 12, tmp_path / "t.txt", prompt="ab")
    assert out.read_text() == "ab" + "11111" + "22222" + "33"
    assert prompts == ["ab", "11111"[-4:], "22222"[-4:]]
    clock = iter(range(0, 10**9, 10))
    monkeypatch.setattr(runs, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    written = []
    with pytest.raises(runs.RequestTooLarge, match="days here"):
        runs.sample_to_file(run, 10**9, None, write=written.append)
    assert written == [], "refused before a character is printed"


def test_auto_retrains_only_the_damaged_model_and_says_so_once(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path))
    recording = checkpoints.Lesson("00_test", "fast", pretrained="record")
    first, second = recording.train("tiny", key="first"), recording.train("tiny", key="second")
    recording.install()
    damaged = tmp_path / "fast" / "00_test" / "first" / training.MODEL_FILE
    damaged.write_bytes(damaged.read_bytes()[:100])
    capsys.readouterr()
    auto = checkpoints.Lesson("00_test", "fast", pretrained="auto")
    retrained = auto.train("tiny", key="first")
    assert retrained.run_dir is None, "the damaged one trains again"
    loaded = auto.train("tiny", key="second")
    assert loaded.record == json.loads(json.dumps(second.record)), "the intact one loads"
    auto.train("tiny", key="first")  # the same cell again
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(damaged) in printed[0] and "Training instead" in printed[0]
    with pytest.raises(checkpoints.CheckpointError, match="model.keras is damaged"):
        checkpoints.Lesson("00_test", "fast", pretrained=True).train("tiny", key="first")
    del first


def test_a_change_to_the_store_cut_short_leaves_every_file_matching(tmp_path, monkeypatch):
    """Stopped after the new checksums are pending, before the change is made: a file
    written with its checksum (commit_file), and a recorded lesson being swapped in
    (install_lesson). Simulated by an exception at that point: a commit has no clean-up
    that a kill would skip, so the state left is the same."""
    store = tmp_path / "fast"
    checkpoints.commit_file(store, "spread.json", b'{"old": 1}\n')
    with pytest.MonkeyPatch.context() as patch:
        real = safe_io.atomic_write_bytes

        def killed(path, content):
            if Path(path).name == "spread.json":
                raise KeyboardInterrupt
            return real(path, content)

        patch.setattr(safe_io, "atomic_write_bytes", killed)
        with pytest.raises(KeyboardInterrupt):
            checkpoints.commit_file(store, "spread.json", b'{"new": 2}\n')
    assert (store / checkpoints.PENDING_SUMS).is_file()
    checkpoints.verify(store, [store / "spread.json"])  # the old file still matches
    checkpoints.commit_file(store, "spread.json", b'{"new": 2}\n')
    checkpoints.verify(store, [store / "spread.json"])
    assert not (store / checkpoints.PENDING_SUMS).exists()

    lesson = _lesson_copy(tmp_path)
    shipped = _tree(store / lesson)
    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path))
    recording = checkpoints.Lesson(lesson, "fast", pretrained="record")
    recording.note("numbers", {"answer": 42})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(safe_io, "swap_in", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            recording.install()
    assert (store / checkpoints.PENDING_SUMS).is_file() and _tree(store / lesson) == shipped
    checkpoints.Lesson(lesson, "fast", pretrained=True).check()  # the old lesson verifies
    checkpoints.install_lesson(lesson, "fast")
    assert not (store / checkpoints.PENDING_SUMS).exists()
    installed = checkpoints.Lesson(lesson, "fast", pretrained=True)
    installed.check()
    assert installed.figure("experiments.numbers.answer") == 42


def test_pretrain_writes_outside_the_package_unless_asked(monkeypatch, tmp_path):
    from tutorial_lib import stores

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    parser = cli.build_parser()
    args = parser.parse_args(["pretrain", "--profile", "fast"])
    assert stores.root_of(args) == tmp_path / "genai-notebooks" / "pretrained"
    assert stores.root_of(parser.parse_args(["pretrain", "--into-package"])) == checkpoints.STORE
    assert stores.root_of(parser.parse_args(["pretrain", "--out", "x"])) == Path("x")
    with pytest.raises(SystemExit):
        parser.parse_args(["pretrain", "--out", "x", "--into-package"])


def test_a_folder_swap_without_an_atomic_exchange_recovers_after_a_crash(tmp_path, monkeypatch):
    """Where the file system cannot exchange two folders, the swap takes two renames; a
    crash between them leaves ``target.old``, which recover() puts back."""
    monkeypatch.setattr(safe_io, "_exchange", lambda a, b: False)
    target, staging = tmp_path / "lesson", tmp_path / "staging"
    for folder, text in ((target, "old"), (staging, "new")):
        folder.mkdir()
        (folder / "record.json").write_text(text)
    os.replace(target, safe_io.old_version(target))  # the first rename, then the crash
    safe_io.recover(target)
    assert (target / "record.json").read_text() == "old"
    safe_io.swap_in(staging, target)
    assert (target / "record.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson"]

"""Train the cpu profile's character GPT with some of its settings changed, and print the
validation loss against seconds: the measurement behind choosing a recipe for a fixed
budget of training time (issue #31: five minutes on two cores).

    python scripts/gpt_budget.py '{"steps": 1000, "steps_per_epoch": 250}' --out base.json
    python scripts/gpt_budget.py '{"context": 128, "batch_size": 16, "steps": 7000}'

The JSON object overrides fields of ``transformer.CONFIGS["transformer"]["cpu"]`` (a
:class:`tutorial_lib.transformer.GPTConfig`). After every epoch it prints the seconds
since training began, the training loss and the validation loss (over the whole
validation text unless ``val_batches`` is set); at the end the validation loss of the
whole text, which is what the lesson reports. Compare the seconds of two settings only
when they ran on the same machine, one after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import keras

from tutorial_lib import data, device, training, transformer


class EpochClock(keras.callbacks.Callback):
    """Seconds since training began, training loss and validation loss, per epoch."""

    def on_train_begin(self, logs=None):
        self.start, self.rows = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        row = (time.perf_counter() - self.start, logs["loss"], logs["val_loss"])
        self.rows.append(row)
        print(f"epoch {epoch + 1}: {row[0]:.0f} s, loss {row[1]:.4f}, val {row[2]:.4f}", flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="?", default="{}", help="JSON: GPTConfig fields")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    device.setup("cpu")
    config = dataclasses.replace(
        transformer.CONFIGS["transformer"]["cpu"], **json.loads(args.settings)
    )
    training.set_seed(args.seed)
    text = data.load_shakespeare()
    model = transformer.build_model(config, vocab_size=text.vocab.size)
    print(config, f"{model.count_params():,} parameters", flush=True)
    clock = EpochClock()
    with training.Timer() as timer:
        transformer.fit_model(model, text, config, seed=args.seed, callbacks=[clock], verbose=0)
    result = {
        "settings": json.loads(args.settings),
        "parameters": model.count_params(),
        "seconds": timer.seconds,
        "val_nats_per_char": transformer.evaluate_nll(model, text.val, config)["nats_per_char"],
        "per_epoch": clock.rows,
    }
    print(f"{timer.seconds:.0f} s, validation {result['val_nats_per_char']:.4f} nats/char")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=1)
    return result


if __name__ == "__main__":
    main()

"""Lesson 09's measurements over several training seeds, on this machine, in one run.

    python scripts/text_to_image_measurements.py --seeds 0 1 2 --out bench/text_to_image
    # about 10 minutes per seed on 2 cores

For each seed the cpu-profile text-to-image model trains on the codes of notebook 05's VAE
(shipped, or trained once here), timed; then, with the seed's model:

* the guidance sweep: 1,000 test captions as prompts at w = 0, 1, 2, 4 (digit agreement
  and Fréchet distance);
* the attributes: for every digit, ``--per-prompt`` samples for the low and for the high
  word of each attribute at ``--guidance``, measured as the captions were made;
* the held-out combination: "a zero leaning left" beside "a zero", "a zero leaning right"
  and "a one leaning left";
* a new word from a hundred examples ("fat"): LoRA (rank 4), full fine-tuning and training
  from scratch, each at its learning rate of notebook 09b, scored on the new word and on
  the old prompts.

Writes ``seed{N}.json`` to ``--out`` and prints each figure as it comes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tutorial_lib import captions, checkpoints, denoisers, lora, metrics, profiles, training
from tutorial_lib import text_to_image as t2i

RATES = {"lora": 1e-3, "full": 3e-4, "scratch": 3e-3}  # notebook 09b's, from a sweep
HELD_OUT = ["a zero leaning left", "a zero", "a zero leaning right", "a one leaning left"]


def guidance_sweep(model, num: int = 1000) -> list[dict]:
    prompts, digits = t2i.test_prompts()
    rows = []
    for w in (0.0, 1.0, 2.0, 4.0):
        samples = model.sample(num, prompts=prompts[:num], guidance=w, seed=1)
        quality = metrics.image_quality(samples, "mnist")
        rows.append(
            {
                "w": w,
                "digit_agreement": t2i.prompt_agreement(samples, digits[:num]),
                "frechet_distance": quality["frechet_distance"],
            }
        )
    return rows


def attribute_moves(model, per_prompt: int, guidance: float) -> dict:
    moves = {}
    for name in captions.ATTRIBUTES:
        means = {}
        for level in (-1, 1):
            values = []
            for digit in range(10):
                prompt = captions.caption_words(digit, **{name: level})
                samples = model.sample(per_prompt, prompts=prompt, guidance=guidance, seed=2)
                values.append(float(np.nanmean(captions.measure(samples)[name])))
            means["low" if level < 0 else "high"] = float(np.mean(values))
        moves[name] = means
    return moves


def composition(model, guidance: float, num: int = 200) -> dict:
    found = {}
    for prompt in HELD_OUT:
        samples = model.sample(num, prompts=prompt, guidance=guidance, seed=3)
        slant = captions.measure(samples)["slant"]
        digit = captions.DIGITS.index(prompt.split()[1])
        found[prompt] = {
            "mean_slant": float(np.nanmean(slant)),
            "leaning_left": float(np.mean(slant < -captions.SLANT_CUT)),
            "digit_agreement": t2i.prompt_agreement(samples, [digit] * num),
        }
    return found


def adaptations(model, autoencoder, profile, seed: int, per_digit: int = 50) -> dict:
    images, prompts, _, cuts = t2i.new_word_examples("fat", attribute="thickness", side="high")
    codes, ids = t2i.codes_of(model, autoencoder, images), model.encode_prompts(prompts)
    asked = np.repeat(np.arange(10), per_digit)
    test_captions, test_digits = t2i.test_prompts()

    def score(candidate, word="fat"):
        samples = candidate.sample(
            len(asked), prompts=[f"a {word} {captions.DIGITS[d]}" for d in asked], seed=7
        )
        old = candidate.sample(500, prompts=test_captions[:500], seed=8)
        return {
            "fat": float(np.mean(captions.measure(samples)["thickness"] > cuts[asked])),
            "digit_agreement": t2i.prompt_agreement(samples, asked),
            "old_frechet_distance": metrics.image_quality(old, "mnist")["frechet_distance"],
        }

    found = {"none, 'fat'": score(model), "none, 'thick'": score(model, "thick")}
    for how, rate in RATES.items():
        copy = t2i.adapted_copy(model, how, rank=4, learning_rate=rate, seed=seed)
        seconds = t2i.fine_tune(copy, codes, ids, steps=400, profile=profile, seed=seed)
        found[how] = {
            **score(copy),
            "trained": lora.trainable_count(copy.network),
            "seconds": seconds,
        }
    return found


def measure_seed(seed: int, args) -> dict:
    profile = profiles.get_profile("cpu")
    config = t2i.CONFIGS["text_to_image"]["cpu"]
    part_5 = checkpoints.Lesson("05_diffusion", profile, pretrained="auto")
    autoencoder = denoisers.autoencoder_stage(part_5, config, profile)["vae"]
    training.set_seed(seed)
    with training.Timer() as timer:
        model = t2i.train_model(config, profile=profile, seed=seed, autoencoder=autoencoder).model
    found = {"seed": seed, "train_seconds": timer.seconds}
    print(f"seed {seed}: trained in {timer.seconds:.1f} s", flush=True)
    steps = (
        ("guidance_sweep", lambda: guidance_sweep(model)),
        ("attributes", lambda: attribute_moves(model, args.per_prompt, args.guidance)),
        ("composition", lambda: composition(model, args.guidance)),
        ("adaptations", lambda: adaptations(model, autoencoder, profile, seed)),
    )
    for key, measure in steps:
        found[key] = measure()
        print(f"seed {seed}: {key} {json.dumps(found[key])}", flush=True)
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-prompt", type=int, default=100)
    parser.add_argument("--guidance", type=float, default=2.0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        found = measure_seed(seed, args)
        (args.out / f"seed{seed}.json").write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    main()

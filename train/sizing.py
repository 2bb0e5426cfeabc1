"""`--minutes`: plan a run's steps from the speed measured on this machine, so that a default
run takes about as long on any CPU (or GPU), at the cost of fewer steps on slower ones.

The trainer calls `size_to_minutes` once, before the run's first step; the sized config is
written to config.json, so that a resumed run trains exactly the same plan.
"""

from __future__ import annotations

import collections
import time

import keras
import tensorflow as tf

from train.config import TrainConfig
from train.recipes import Recipe
from train.trainer import build, distribute, make_step_function

OVERHEAD = 0.9  # share of the budget for training steps; the rest: validation, callbacks, saving


def seconds_per_step(step, iterator, min_seconds: float = 2.0, max_steps: int = 20) -> float:
    """Median seconds of one call of the step function `step`, after two warm-up calls (tracing)."""
    for _ in range(2):
        float(step(next(iterator))[1].numpy())
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_seconds and len(times) < max_steps):
        begin = time.perf_counter()
        _, examples = step(next(iterator))
        float(examples.numpy())  # wait for the step
        times.append(time.perf_counter() - begin)
    return sorted(times)[len(times) // 2]


def size_to_minutes(recipe: Recipe, config: TrainConfig, strategy: tf.distribute.Strategy,
                    verbose: bool = True) -> TrainConfig:
    """`config` resized so that its steps take about `config.minutes` here.

    Builds a throwaway copy of the model and data, times a few steps of every training phase
    the plan goes through (`begin_step` keys), estimates the whole plan, and scales it by
    `recipe.resized`. The caller re-seeds before building the real model.
    """
    with strategy.scope():
        built = build(recipe, config)
    model = built.model
    iterator = iter(distribute(strategy, built.batches_from(0)))
    phase_of = getattr(model, "begin_step", lambda step: None)
    counts = collections.Counter(phase_of(step) for step in range(config.total_steps))
    per_step = {}
    for key in counts:
        first = next(step for step in range(config.total_steps) if phase_of(step) == key)
        phase_of(first)
        per_step[key] = seconds_per_step(make_step_function(strategy, model.train_step), iterator)
    planned = sum(counts[key] * per_step[key] for key in counts)
    factor = OVERHEAD * 60 * config.minutes / planned
    sized = recipe.resized(config, factor)
    if verbose:
        speeds = ", ".join(f"{per_step[k]:.3f} s/step" + (f" ({k})" if k is not None else "") for k in counts)
        print(f"{recipe.name}: --minutes {config.minutes:g}: measured {speeds}; planned "
              f"{config.total_steps} steps -> {sized.total_steps} ({sized.epochs} epochs x "
              f"{sized.steps_per_epoch}), saved in config.json")
    del built, model, iterator
    policy = keras.mixed_precision.global_policy()
    keras.backend.clear_session()  # also resets the global dtype policy: put it back
    keras.mixed_precision.set_global_policy(policy)
    return sized

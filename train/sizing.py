"""`--minutes`: plan a run's steps from the speed measured on this machine, so that a default
run takes about as long on any CPU (or GPU), at the cost of fewer steps on slower ones.

The trainer calls `size_to_minutes` once, before the run's first step; the sized config is
written to config.json, so that a resumed run trains exactly the same plan.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from train.config import TrainConfig
from train.recipes import Recipe
from train.trainer import build, distribute, make_step_function, make_steps_function, trainer_steps_per_call

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
    counts, per_step = collections.Counter(), {}
    for key, first, steps in phases(model, config.total_steps):
        counts[key] = steps
        if hasattr(model, "begin_step"):
            model.begin_step(first)
        step = make_step_function(strategy, model.train_step, jit_compile=config.xla == "on")
        per_step[key] = seconds_per_step(step, iterator)
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


def phases(model: keras.Model, total_steps: int) -> list[tuple[object, int, int]]:
    """`(phase key, its first step, its number of steps)` of each training phase a run of
    `total_steps` goes through (the model's `begin_step` keys; one phase, key None, without)."""
    phase_of = getattr(model, "begin_step", lambda step: None)
    counts, first = collections.Counter(), {}
    for step in range(total_steps):
        key = phase_of(step)
        counts[key] += 1
        first.setdefault(key, step)
    return [(key, first[key], counts[key]) for key in counts]


def xla_speedup(recipe: Recipe, config: TrainConfig) -> float:
    """Seconds of the run's first-phase training step / the same step compiled by XLA, in the
    current strategy's scope and dtype policy: every phase's step is compiled first (raising
    `tf.errors.OpError` where XLA cannot compile one), then the two steps are timed alternately
    after untimed warm-up ones (`train.strategy.interleaved_speedup`). About two step tracings
    and an XLA compile per phase; clear the Keras session afterwards."""
    from train.strategy import STEP_TIMING, interleaved_speedup

    policy = keras.mixed_precision.global_policy().name
    compiled = step_runner(recipe, config, jit_compile=True)
    first_phase = compiled(policy)
    for _, first, _ in phases(first_phase.model, config.total_steps)[1:]:
        compiled(policy, first)()  # later phases: compiled and run once (they could hold an op XLA lacks)
    return interleaved_speedup(step_runner(recipe, config, jit_compile=False)(policy), first_phase, **STEP_TIMING)


def steps_per_timed_call(config: TrainConfig) -> int:
    """Steps in each call `step_runner` times: as the trainer's calls, at most
    `MAX_TIMED_STEPS`, so that timing a slow step stays short."""
    return min(trainer_steps_per_call(config), MAX_TIMED_STEPS)


MAX_TIMED_STEPS = 5  # spreads a call's fixed cost; more only lengthens the start of a run (gan_superres: 0.1 s steps)


def step_runner(recipe, config, jit_compile: bool | None = None,
                steps: int | None = None) -> Callable[..., Callable[[], None]]:
    """`(policy, first=0) -> run`: builds a throwaway copy of `config`'s model and batches in
    that Keras dtype policy (call it in the run's strategy scope) and returns a call that runs
    `steps` (default `steps_per_timed_call(config)`) training steps of the first phase (or of
    the phase of step `first`) in one traced call, as the trainer runs them
    (`make_steps_function`), and waits for them; its `model` attribute is the throwaway model.
    With `jit_compile` (default: `config.xla` is "on"), the step is compiled by XLA. What
    `train.strategy.resolve_precision(..., step_runner=...)`, `xla_speedup` and `train.bench`
    time, alternating two kinds of call after untimed warm-up ones (clear the Keras session
    afterwards)."""
    count = tf.constant(steps or steps_per_timed_call(config))
    jit_compile = config.xla == "on" if jit_compile is None else jit_compile

    def make(policy: str, first: int = 0) -> Callable[[], None]:
        keras.mixed_precision.set_global_policy(policy)
        built = build(recipe, dataclasses.replace(config, precision=policy))
        if hasattr(built.model, "begin_step"):
            built.model.begin_step(first)
        calls = make_steps_function(tf.distribute.get_strategy(), built.model.train_step, jit_compile=jit_compile,
                                    loop=int(count) > 1)
        iterator = iter(distribute(tf.distribute.get_strategy(), built.batches_from(0)))
        keras.mixed_precision.set_global_policy("float32")

        def run() -> None:
            keras.mixed_precision.set_global_policy(policy)  # as when the model was built (tracing)
            calls(iterator, count)  # returns numbers: waits for the steps
            keras.mixed_precision.set_global_policy("float32")

        run.model = built.model
        return run

    return make

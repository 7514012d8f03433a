"""One chaos run, planned from its seed alone: the experiment, the victim, the signal, the moment.

Everything is drawn from ``random.Random(seed)``, so ``CHAOS_ONLY=<seed>`` plans the same run
again. The mode is ``seed % len(MODES)`` in registry order, so every mode gets its share and a
mode registered later joins the campaign by itself. The mode-specific settings are drawn only
for the settings the registry says the mode reads (``Mode.settings``); a setting the
campaign does not know keeps its default.
"""
from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from typing import Any, Callable

import ddlkit
from ddlkit.config import ALLREDUCE_IMPLS

#: one block of len(MODES) seeds in this many starts cold, in a fresh Python process (10%,
#: every mode alike)
COLD_EVERY = 10
#: the share of runs whose victim is stopped (SIGSTOP) rather than killed
STOP_SHARE = 0.20
#: a run that takes longer than this is a hang (RunTimeout)
TIMEOUT_S = 30.0
#: when the victim is hit: at start-up (this long at most after its process appears), at a
#: random training step, or at a random time after ``run()`` was called (at most this long)
START_WINDOW_S = 0.15
TIME_WINDOW_S = 1.0
MOMENTS = (("start", 0.35), ("step", 0.40), ("time", 0.25))

#: how to draw each mode-specific setting, by name (see ``ddlkit.modes.MODE_SETTINGS``)
DRAWS: dict[str, Callable[[random.Random, int], Any]] = {
    "on_worker_loss": lambda rng, workers: rng.choice(["auto", "continue", "fail"]),
    "compression": lambda rng, workers: rng.choice(["none", "topk", "qsgd"]),
    "backup_workers": lambda rng, workers: rng.choice([0, 1]),
    "staleness_bound": lambda rng, workers: rng.choice([0, 1, 2, None]),
    "local_steps": lambda rng, workers: rng.choice([1, 2, 4, 8]),
    "allreduce_impl": lambda rng, workers: rng.choice(ALLREDUCE_IMPLS),
}


@dataclass(frozen=True)
class Case:
    """A planned chaos run: ``settings`` are the ``Experiment`` fields beyond the defaults."""

    seed: int
    mode: str
    settings: dict[str, Any]
    victim: int
    signal: str  # "KILL" or "STOP"
    moment: str  # "start", "step" or "time"
    delay_s: float  # "start": after the victim's process appears; "time": after run()
    at_step: int  # "step": once the run reports this step
    cold: bool

    def experiment(self) -> ddlkit.Experiment:
        """The experiment this run starts."""
        return ddlkit.Experiment(mode=self.mode, seed=self.seed, **self.settings)

    @property
    def signum(self) -> int:
        """The signal sent to the victim."""
        return int(getattr(signal, f"SIG{self.signal}"))

    @property
    def tolerated(self) -> bool:
        """Whether the run may go on without the victim once it has joined."""
        exp = self.experiment()
        return ddlkit.MODES[self.mode].has_server and self.victim >= 1 and \
            exp.continues_after_worker_loss

    def when(self) -> str:
        """The moment of the hit, in words."""
        if self.moment == "start":
            return f"{self.delay_s:.3f} s after its start"
        if self.moment == "step":
            return f"at step {self.at_step}"
        return f"{self.delay_s:.2f} s after run()"

    def describe(self) -> str:
        """One line: seed, start, mode and settings, signal, victim and moment."""
        shown = {k: v for k, v in self.settings.items() if k in SHOWN}
        extra = ", ".join(f"{k}={v}" for k, v in shown.items())
        return (f"seed={self.seed} {'cold' if self.cold else 'warm'} {self.mode}({extra}) "
                f"{self.signal} rank {self.victim} {self.when()}")


#: the settings a run's line shows (the others are the same in every run)
SHOWN = ("workers", "steps", *DRAWS, "unresponsive_s")


def plan(seed: int) -> Case:
    """The run for ``seed``. The hit is drawn before the mode's settings, so a setting
    added to a mode later changes the experiment but not who is hit, how and when."""
    rng = random.Random(seed)
    names = list(ddlkit.MODES)
    mode = ddlkit.MODES[names[seed % len(names)]]
    workers, steps = rng.choice([2, 3]), rng.randint(40, 120)
    victim = rng.randrange(mode.world_size(workers))
    stop = rng.random() < STOP_SHARE
    moment = rng.choices([m for m, _ in MOMENTS], weights=[w for _, w in MOMENTS])[0]
    window = START_WINDOW_S if moment == "start" else TIME_WINDOW_S
    delay_s, at_step = rng.uniform(0.0, window), rng.randint(1, steps)
    cold = (seed // len(names)) % COLD_EVERY == COLD_EVERY - 1
    settings: dict[str, Any] = dict(
        workers=workers, dataset="iris", model=rng.choice(["linear", "mlp"]), hidden=16,
        batch_size=8, steps=steps, eval_every=max(1, steps // 2), timeout_s=TIMEOUT_S)
    if stop:  # a frozen rank is reported after unresponsive_s
        settings["unresponsive_s"] = rng.choice([2.0, 3.0])
    for name in sorted(mode.settings):
        if name in DRAWS:
            settings[name] = DRAWS[name](rng, workers)
    if settings.get("compression") == "topk":
        settings["compress_ratio"] = 0.25
    return Case(seed=seed, mode=mode.name, settings=settings, victim=victim,
                signal="STOP" if stop else "KILL", moment=moment, delay_s=delay_s,
                at_step=at_step, cold=cold)

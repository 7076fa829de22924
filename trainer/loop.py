"""The training loop every family runs: budgets, checkpoints and resume, EMA, metrics,
samples and curves, one process or many (DistributedDataParallel under torchrun).

A run lives in one folder (``<checkpoint_dir>/<run>``)::

    checkpoints/step-000200.pt   networks, optimisers, scalers, EMA, the recipe's extra
                                 state (CycleGAN's image pools), step, metrics at init
    metrics.csv                  step, seconds, every loss and evaluation figure
    tensorboard/                 the same scalars, and the sample grids, as event files
    samples/step-000200.png      input | output | target rows on held-aside images
    curves.png                   the loss curves, redrawn with each sample grid
    generator.pth                the trained generator's state_dict (EMA weights if on)
    result.json                  what :class:`RunResult` holds

With ``optim.decay_start`` set, every optimiser's rates fall linearly to 0 from that fraction
of ``steps`` (each from its own initial rate, so a recipe's per-network rates keep their
ratio); the rate is a function of the step, so it needs no state of its own.

Starting a run whose folder has a checkpoint continues from it. The randomness of step ``s``
on rank ``r`` (dropout, sampling) is seeded from ``(seed, s, r)``, so a run resumed from
step ``s`` repeats the steps it would have taken.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from gantry.core.files import atomic_write
from gantry.core.training import TrainConfig
from trainer import checkpointing
from trainer.data import collate
from trainer.data.sampling import StepSampler
from trainer.distributed import (
    World,
    all_reduce_mean,
    barrier,
    broadcast_object,
    destroy_process_group,
    init_process_group,
    unwrap,
    world_from_env,
    wrap,
)
from trainer.metrics import CURVES_FILE, SAMPLES_DIR, MetricsLog, image_grid, plot_curves, save_png
from trainer.recipes import RECIPES, Recipe

Device = Literal["auto", "cpu", "cuda"]
GENERATOR_FILE = "generator.pth"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class StepReport:
    """What the loop tells its caller after each step (progress bars, job progress)."""

    step: int
    steps: int
    seconds: float
    losses: dict[str, float]


@dataclass
class RunResult:
    """How a run ended and what it left."""

    run_dir: str
    recipe: str
    step: int
    steps: int
    stopped: Literal["steps", "time_limit"]
    resumed_from: int | None
    seconds: float
    world_size: int
    device: str
    generator_architecture: str
    metrics_at_init: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    last_losses: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_device(device: Device, world: World) -> torch.device:
    """CUDA (this process's GPU) when asked or, for ``auto``, when one is visible."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("train_device is cuda but no GPU is visible")
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def _seed_step(config: TrainConfig, step: int, world: World) -> None:
    torch.manual_seed((config.seed * 1_000_003 + step) * 1009 + world.rank)


class _EMA:
    """Exponential moving average of a network's weights (buffers copied as they are)."""

    def __init__(self, network: nn.Module, decay: float) -> None:
        self.decay = decay
        self.network = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        for ema, live in zip(self.network.parameters(), network.parameters(), strict=True):
            ema.lerp_(live.detach(), 1 - self.decay)
        for ema_buffer, buffer in zip(self.network.buffers(), network.buffers(), strict=True):
            ema_buffer.copy_(buffer)


class _Run:
    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        data_dir: Path,
        device: Device,
        on_step: Callable[[StepReport], None] | None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.world = world_from_env()
        self.device = resolve_device(device, self.world)
        self.on_step = on_step
        init_process_group(self.world, self.device)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.recipe: Recipe = RECIPES.get(config.recipe)(
            config, data_dir=data_dir, device=self.device, run_dir=run_dir
        )
        self.recipe.build()
        key = self.recipe.generator_key
        self.ema = (
            _EMA(self.recipe.networks[key], config.ema_decay) if config.ema_decay > 0 else None
        )
        self.step = 0
        self.elapsed = 0.0
        self.resumed_from: int | None = None
        self.metrics_at_init: dict[str, float] = {}
        for optimizer in self.recipe.optimizers.values():
            for group in optimizer.param_groups:  # the rate decay scales from here
                group.setdefault("initial_lr", group["lr"])
        self._resume()
        # After loading: DDP broadcasts rank 0's parameters to the others on wrapping.
        self.recipe.networks = {
            name: wrap(net, self.world, self.device) for name, net in self.recipe.networks.items()
        }
        dataset = self.recipe.train_dataset()
        self.sampler = StepSampler(
            len(dataset),
            config.batch_size,
            config.seed,
            rank=self.world.rank,
            world=self.world.size,
            flip=config.data.flip,
        )
        self.dataset = dataset
        self.log = MetricsLog(run_dir, self.step) if self.world.is_main else None
        self.last_losses: dict[str, float] = {}

    # --- state ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed_s": self.elapsed,
            "config": self.config.model_dump(mode="json"),
            "networks": {k: unwrap(v).state_dict() for k, v in self.recipe.networks.items()},
            "optimizers": {k: v.state_dict() for k, v in self.recipe.optimizers.items()},
            "scalers": {k: v.state_dict() for k, v in self.recipe.scalers.items()},
            "ema": self.ema.network.state_dict() if self.ema else None,
            "recipe_state": self.recipe.extra_state(),
            "metrics_at_init": self.metrics_at_init,
        }

    def _resume(self) -> None:
        path = checkpointing.latest(self.run_dir) if self.world.is_main else None
        state = broadcast_object(checkpointing.load(path) if path else None, self.world)
        if state is None:
            return
        if state["config"]["recipe"] != self.config.recipe:
            raise ValueError(f"{self.run_dir} holds a {state['config']['recipe']} run")
        for name, net in self.recipe.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, optimizer in self.recipe.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scaler in self.recipe.scalers.items():
            scaler.load_state_dict(state["scalers"][name])
        if self.ema is not None and state["ema"] is not None:
            self.ema.network.load_state_dict(state["ema"])
        # Checkpoints written before recipes had extra state have no such key.
        self.recipe.load_extra_state(state.get("recipe_state", {}))
        self.step = self.resumed_from = int(state["step"])
        self.elapsed = float(state["elapsed_s"])
        self.metrics_at_init = dict(state["metrics_at_init"])

    def save_checkpoint(self) -> None:
        if self.world.is_main:
            checkpointing.save(
                self.run_dir, self.step, self._state(), keep=self.config.keep_checkpoints
            )

    # --- looking at the generator ----------------------------------------------------------
    def generator(self) -> nn.Module:
        """The generator to evaluate and export: the EMA copy when on, else the live one."""
        if self.ema is not None:
            return self.ema.network
        return unwrap(self.recipe.networks[self.recipe.generator_key])

    def evaluate(self) -> dict[str, float]:
        generator = self.generator()
        was_training = generator.training
        generator.eval()
        try:
            return self.recipe.evaluate(generator)
        finally:
            generator.train(was_training)

    def write_samples(self) -> None:
        if self.log is None:
            return
        generator = self.generator()
        was_training = generator.training
        generator.eval()
        try:
            grid = image_grid(self.recipe.samples(generator))
        finally:
            generator.train(was_training)
        save_png(grid, self.run_dir / SAMPLES_DIR / f"step-{self.step:06d}.png")
        self.log.image("samples", grid, self.step)
        plot_curves(self.log.rows, self.run_dir / CURVES_FILE)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> RunResult:
        cfg = self.config
        if self.resumed_from is None and self.world.is_main:
            self.metrics_at_init = self.evaluate()
            assert self.log is not None
            self.log.log(0, 0.0, {f"{k}": v for k, v in self.metrics_at_init.items()})
        stopped: Literal["steps", "time_limit"] = "steps"
        started = time.monotonic() - self.elapsed
        while self.step < cfg.steps:
            _seed_step(cfg, self.step, self.world)
            picks = self.sampler.batch(self.step)
            batch = collate([self.dataset.sample(i, flip) for i, flip in picks])
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            self._set_learning_rates()
            losses = self.recipe.train_step(batch, self.step)
            if self.ema is not None:
                self.ema.update(unwrap(self.recipe.networks[self.recipe.generator_key]))
            self.step += 1
            self.elapsed = time.monotonic() - started
            self._after_step(losses)
            if self.on_step is not None:
                self.on_step(StepReport(self.step, cfg.steps, self.elapsed, self.last_losses))
            if cfg.time_limit_s is not None and self._over_time(cfg.time_limit_s):
                stopped = "time_limit"
                break
        return self._finish(stopped)

    def _set_learning_rates(self) -> None:
        """Every optimiser's rates for this step: its initial ones times the config's decay
        (a function of the step alone, so a resumed run follows the same schedule)."""
        factor = self.config.optim.lr_factor(self.step, self.config.steps)
        for optimizer in self.recipe.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def _over_time(self, limit: float) -> bool:
        # Rank 0's clock decides, so every process stops at the same step.
        return bool(broadcast_object(self.elapsed >= limit, self.world))

    def _after_step(self, losses: dict[str, float]) -> None:
        cfg, step = self.config, self.step
        if step % cfg.log_every == 0 or step == cfg.steps:
            self.last_losses = all_reduce_mean(losses, self.world)
            if self.log is not None:
                self.log.log(step, self.elapsed, self.last_losses)
        elif not self.last_losses:
            self.last_losses = losses
        if cfg.eval_every and step % cfg.eval_every == 0 and self.log is not None:
            self.log.log(step, self.elapsed, self.evaluate())
        if step % cfg.sample_every == 0:
            self.write_samples()
        if step % cfg.checkpoint_every == 0:
            self.save_checkpoint()
            barrier(self.world)

    def _finish(self, stopped: Literal["steps", "time_limit"]) -> RunResult:
        self.save_checkpoint()
        result = RunResult(
            run_dir=str(self.run_dir),
            recipe=self.config.recipe,
            step=self.step,
            steps=self.config.steps,
            stopped=stopped,
            resumed_from=self.resumed_from,
            seconds=round(self.elapsed, 3),
            world_size=self.world.size,
            device=str(self.device),
            generator_architecture=self.recipe.generator_architecture(),
            metrics_at_init=self.metrics_at_init,
            last_losses=self.last_losses,
        )
        result.notes.extend(self.recipe.notes)
        if self.log is not None:
            result.metrics = self.evaluate()
            self.log.log(self.step, self.elapsed, result.metrics)
            self.write_samples()
            served = self.recipe.served_network(self.generator())
            torch.save(served.state_dict(), self.run_dir / GENERATOR_FILE)
            self.log.close()
            result.artifacts = artifacts(self.run_dir)
            atomic_write(self.run_dir / RESULT_FILE, json.dumps(asdict(result), indent=2))
        barrier(self.world)
        return result


def artifacts(run_dir: Path) -> dict[str, str]:
    """The files a run left, by kind, relative to the run folder."""
    found: dict[str, str] = {}
    latest = checkpointing.latest(run_dir)
    if latest is not None:
        found["checkpoint"] = str(latest.relative_to(run_dir))
    for kind, name in (("generator", GENERATOR_FILE), ("metrics", "metrics.csv")):
        if (run_dir / name).is_file():
            found[kind] = name
    if (run_dir / CURVES_FILE).is_file():
        found["curves"] = CURVES_FILE
    samples = sorted((run_dir / SAMPLES_DIR).glob("*.png"))
    if samples:
        found["samples"] = str(samples[-1].relative_to(run_dir))
    if (run_dir / "tensorboard").is_dir():
        found["tensorboard"] = "tensorboard"
    return found


def train(
    config: TrainConfig,
    run_dir: Path,
    *,
    data_dir: Path,
    device: Device = "auto",
    on_step: Callable[[StepReport], None] | None = None,
) -> RunResult:
    """Run (or continue) one training run in ``run_dir``.

    Args:
        config: a validated config (:func:`gantry.core.training.load_train_config`).
        run_dir: the run's folder; a checkpoint there is resumed from.
        data_dir: the data root (``../shared/data`` layout).
        device: ``auto`` (CUDA when visible), ``cpu`` or ``cuda``.
        on_step: called after every step (progress; raising stops the run at that step).

    Returns:
        How the run ended, its held-aside figures at init and at the end, and its files.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _Run(config, run_dir, data_dir, device, on_step).run()
    finally:
        destroy_process_group()

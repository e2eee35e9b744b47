"""A config made concrete: the model, the optimizer, the mesh, and the train
and eval steps compiled with explicit shardings. Shared by the trainer, the
evaluator and the tests (which build it on 1 and on 8 devices)."""

import dataclasses
import functools
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh

from pixel_models import data, likelihood
from pixel_models.interface import PixelModel
from pixel_models.models.registry import build_model
from pixel_models.training import sharding, steps, train_state
from pixel_models.training.optimizers import learning_rate_schedule, make_optimizer

# Run fields that must be whole numbers of at least this.
_MINIMUM = {
    "num_train_steps": 0,
    "log_every_steps": 0,
    "eval_every_steps": 0,
    "checkpoint_every_steps": 0,
    "keep_checkpoints": 1,
    "sample_every_steps": 0,
    "num_sample_images": 1,
}


def _check_run_fields(config: ml_collections.ConfigDict) -> None:
    for name, minimum in _MINIMUM.items():
        value = config.get(name, minimum)  # runs saved before a field existed lack it
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r} must be a whole number >= {minimum}")


CONDITIONING = ("none", "label", "embedding")


def conditioning_key(config: ml_collections.ConfigDict, spec: data.DatasetSpec) -> str | None:
    """`config.conditioning` -> the batch entry fed as `cond`: None ("none"),
    "label", or "embedding" (each image's embedding by the trained network
    `config.embedding.workdir`, `config.embedding.dim` numbers;
    `pixel_models.embeddings`)."""
    conditioning = config.get("conditioning", "none")
    if conditioning not in CONDITIONING:
        raise ValueError(f"conditioning={conditioning!r} must be one of {', '.join(CONDITIONING)}")
    if conditioning == "label" and not spec.num_classes:
        raise ValueError(
            f"conditioning='label', but {config.dataset.name} has no labels: "
            "use an unconditional recipe"
        )
    if conditioning == "embedding":
        embedding = config.get("embedding") or {}
        dim = embedding.get("dim")
        if not embedding.get("workdir") or isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(
                "conditioning='embedding' needs config.embedding.workdir (a trained run whose "
                "model has an encoder) and config.embedding.dim (the size of its code)"
            )
        if dim < 1:
            raise ValueError(f"embedding.dim={dim} must be at least 1")
    return None if conditioning == "none" else conditioning


def example_inputs(
    config: ml_collections.ConfigDict, spec: data.DatasetSpec
) -> tuple[jax.Array, jax.Array | None]:
    """`train_state.example_inputs` of the run `config` on `spec`'s images."""
    cond_key = conditioning_key(config, spec)
    dim = config.embedding.dim if cond_key == "embedding" else 0
    return train_state.example_inputs(spec.image_shape, cond_key, dim)


@dataclasses.dataclass(frozen=True)
class Experiment:
    config: ml_collections.ConfigDict
    model: PixelModel
    optimizer: optax.GradientTransformation
    learning_rate: optax.Schedule
    mesh: Mesh
    image_shape: tuple[int, int, int]
    train_chunk_size: int  # images per sequential chunk of a batch (steps.step_chunk_size)
    eval_chunk_size: int
    cond_key: str | None  # the batch entry fed to the model as `cond` (config.conditioning)

    @classmethod
    def build(cls, config: ml_collections.ConfigDict, devices: list | None = None) -> "Experiment":
        """Validate `config` (model, optimizer, run lengths and cadences, batch
        sizes vs. devices) and assemble; the model is traced once
        (`abstract_state`), so a field it cannot take fails here. Raises
        ValueError with a one-line reason on a bad field."""
        _check_run_fields(config)
        model = build_model(config.model)
        optimizer = make_optimizer(config.optimizer, config.num_train_steps)
        mesh = sharding.make_mesh(devices)
        sharding.check_batch_size(mesh, config.batch_size, "batch_size")
        sharding.check_batch_size(mesh, config.eval_batch_size, "eval_batch_size")
        if not 0.0 <= config.get("ema_decay", 0.0) < 1.0:
            raise ValueError(f"ema_decay={config.ema_decay} must be in [0, 1); 0 turns EMA off")
        spec = data.get_spec(config.dataset.name)
        if config.model.num_levels != spec.num_levels:
            raise ValueError(
                f"model.num_levels={config.model.num_levels}, but {config.dataset.name} "
                f"images take {spec.num_levels} values"
            )
        image_shape = spec.image_shape
        cond_key = conditioning_key(config, spec)
        chunk_size = functools.partial(
            steps.step_chunk_size,
            num_devices=mesh.devices.size,
            image_shape=image_shape,
            platform=mesh.devices.flat[0].platform,
            cpu_chunk_pixels=steps.cpu_chunk_pixels(config),
        )
        experiment = cls(
            config=config,
            model=model,
            optimizer=optimizer,
            learning_rate=learning_rate_schedule(config.optimizer, config.num_train_steps),
            mesh=mesh,
            image_shape=image_shape,
            train_chunk_size=chunk_size(config.batch_size),
            eval_chunk_size=chunk_size(config.eval_batch_size),
            cond_key=cond_key,
        )
        try:
            jax.tree.leaves(experiment.abstract_state)
        except Exception as e:  # noqa: BLE001 - whatever the model raised, one line
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise ValueError(
                f"model {config.model.name!r} does not build with these fields: {reason}"
            ) from e
        return experiment

    @property
    def use_ema(self) -> bool:
        return train_state.uses_ema(self.config)

    @property
    def conditioned_on(self) -> str | None:
        """What the NLL is conditioned on: None (p(x)), the batch entry fed as
        `cond` ("label"), or what the model conditions on by itself (its
        `CONDITIONED_ON`, e.g. the auto-encoder's own code of x).
        "embedding" is the embedding network's code of x itself."""
        return self.cond_key or self.model.CONDITIONED_ON

    def likelihood(self, num_samples: int = 1) -> str:
        """What the evaluated NLL is the negative log of: "p(x)", "p(x | label)",
        the model's own statement (its `LIKELIHOOD`), or, for a latent-variable
        model scored with `num_samples` importance samples, which bound
        (`likelihood.bound_name`)."""
        if self.model.LATENT:
            return likelihood.bound_name(num_samples)
        default = "p(x)" if self.conditioned_on is None else f"p(x | {self.conditioned_on})"
        return self.model.LIKELIHOOD or default

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """The entries of a loader's batch that the train step takes."""
        return ("image",) if self.cond_key is None else ("image", self.cond_key)

    def device_batch(self, local_batch: dict[str, np.ndarray], **extra) -> steps.Batch:
        """This process's rows of a batch (`batch_keys`, and `extra` such as
        the eval mask) -> global arrays sharded over "data", leaf by leaf.
        Labels go as int32 (JAX's default integer)."""
        rows = {key: local_batch[key] for key in self.batch_keys} | extra
        if "label" in rows:
            rows["label"] = np.asarray(rows["label"], np.int32)
        return sharding.put_batch(self.mesh, rows)

    def _create_state(self, rng: jax.Array) -> train_state.TrainState:
        image, cond = example_inputs(self.config, data.get_spec(self.config.dataset.name))
        return train_state.create_train_state(
            self.model, self.optimizer, rng, image, self.use_ema, cond=cond
        )

    @functools.cached_property
    def abstract_state(self) -> train_state.TrainState:
        """Shapes, dtypes and shardings (replicated) of the train state; traced
        once (`model.init` under `eval_shape`) and shared by every user."""
        abstract = jax.eval_shape(self._create_state, jax.random.PRNGKey(0))
        return sharding.replicated_shapes(self.mesh, abstract)

    def _state_sharding(self) -> Any:
        return jax.tree.map(lambda x: x.sharding, self.abstract_state)

    def init_state(self) -> train_state.TrainState:
        """A fresh state from `config.seed`, created directly in its sharding."""
        create = jax.jit(self._create_state, out_shardings=self._state_sharding())
        return create(jax.random.PRNGKey(self.config.seed))

    @functools.cached_property
    def train_step(self):
        """`(state, batch) -> (state, {loss, grad_norm})`, the batch
        (`device_batch`: image[B, H, W, C], and the conditioning entry) sharded
        over "data", the state replicated and donated."""
        step = functools.partial(
            steps.train_step,
            self.model,
            self.optimizer,
            cond_key=self.cond_key,
            ema_decay=self.config.get("ema_decay", 0.0),
            chunk_size=self.train_chunk_size,
        )
        state_sharding = self._state_sharding()
        return jax.jit(
            step,
            in_shardings=(state_sharding, sharding.batch_sharding(self.mesh)),
            out_shardings=(state_sharding, sharding.replicated(self.mesh)),
            donate_argnums=0,
        )

    @functools.cached_property
    def eval_step(self):
        """`make_eval_step(1)`: the step of the evaluations during training."""
        return self.make_eval_step(1)

    def make_eval_step(self, num_samples: int):
        """`(params, batch, rng) -> {nll_sum, count}` (replicated; and
        `kl_sum` for a latent-variable model, scored by its bound with
        `num_samples` importance samples drawn from `rng`); the batch as for
        `train_step` plus `mask[B]`, B = `eval_batch_size`."""
        step = functools.partial(
            steps.eval_step,
            self.model,
            cond_key=self.cond_key,
            chunk_size=self.eval_chunk_size,
            num_samples=num_samples,
        )
        replicated = sharding.replicated(self.mesh)
        return jax.jit(
            step,
            in_shardings=(replicated, sharding.batch_sharding(self.mesh), replicated),
            out_shardings=replicated,
        )

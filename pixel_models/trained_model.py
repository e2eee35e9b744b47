"""A trained run in one line, for notebooks and scripts: `pixel_models.load`.

    trained = pixel_models.load("runs/quickstart")
    nll = trained.log_prob(images)                  # [B] nats
    samples = trained.sample(16, jax.random.key(0))  # uint8 [16, H, W, C]

`load` reads the workdir's saved config and the parameters that `evaluate`
and `sample` use (the EMA when the run keeps one, or `params="raw"`), nothing else: no
optimizer state, no trainer. It runs on whatever devices this process has
(CPU, GPU or TPU), whatever the run was trained on. Every method takes numpy
or JAX arrays and refuses, with one ValueError, images of the wrong shape,
values outside `[0, num_levels)`, non-integer images, or conditioning the
model does not take.
"""

import dataclasses
import functools
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from pixel_models import data, host_memory, likelihood
from pixel_models.images import check as check_levels
from pixel_models.interface import PixelModel
from pixel_models.models.registry import build_model
from pixel_models.sampling import canvases
from pixel_models.training import checkpoints, sharding, train_state, workdirs
from pixel_models.training.experiment import conditioning_key, example_inputs


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A model with its trained parameters.

    Attributes:
      config: the run's saved config.
      model: the Flax module (`pixel_models.interface.PixelModel`).
      params: its parameters (the EMA when the run keeps one), replicated
        over `mesh`.
      step: the checkpoint's training step.
      mesh: this process's devices; sampling batches are sharded over them.
      embedding_network: for a run conditioned on a trained network's
        embeddings (`config.conditioning == "embedding"`), that network,
        loaded; else None.
    """

    config: ml_collections.ConfigDict
    model: PixelModel
    params: Any
    step: int
    mesh: Mesh
    embedding_network: "TrainedModel | None" = None

    @property
    def variables(self) -> dict[str, Any]:
        return {"params": self.params}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(H, W, C)` of the dataset's images."""
        return data.get_spec(self.config.dataset.name).image_shape

    @property
    def drawn_given_codes(self) -> bool:
        """Whether each image is drawn given a code of an image (`code`): the
        auto-encoder's own, or the embedding network's for a run conditioned
        on embeddings."""
        return self.model.ENCODES or self.embedding_network is not None

    @property
    def num_levels(self) -> int:
        return self.config.model.num_levels

    @property
    def num_classes(self) -> int:
        """Classes of the labels it is conditioned on; 0 when it takes none."""
        if conditioning_key(self.config, data.get_spec(self.config.dataset.name)) != "label":
            return 0
        return data.get_spec(self.config.dataset.name).num_classes

    def log_prob(self, images, cond=None) -> np.ndarray:
        """`log p(x)` of `images[B, H, W, C]` in nats, float64 `[B]`, scored
        in batches of the run's `eval_batch_size`. `cond`: labels `[B]` of a
        class-conditional run; for the auto-encoder, None (each image's own
        code, as in training) or codes `[B, m]`; for a run conditioned on
        embeddings, None (each image's own embedding, as in training) or
        embeddings `[B, dim]`."""
        x = self.checked_images(images)
        cond = self._checked_cond(cond, len(x))
        if cond is None and self.embedding_network is not None:
            cond = self.code(x)
        size = self.config.eval_batch_size
        parts = [
            self._log_prob(
                self.variables,
                x[start : start + size],
                None if cond is None else cond[start : start + size],
            )
            for start in range(0, len(x), size)
        ]
        return np.concatenate([np.asarray(part, np.float64) for part in parts])

    @functools.cached_property
    def _log_prob(self):
        """`likelihood.log_prob` of the model, compiled once per batch shape
        (the parameters an argument, not constants of the program)."""
        return jax.jit(functools.partial(likelihood.log_prob, self.model))

    def bound(self, images, rng: jax.Array, num_samples: int = 1000) -> np.ndarray:
        """A lower bound on `log p(x)` of `images[B, H, W, C]` in nats, float64
        `[B]`, for a latent-variable model (`likelihood.bound`: the ELBO for
        `num_samples=1`, else the importance-weighted bound), scored in
        batches of the run's `eval_batch_size`, batch n's z drawn from
        `fold_in(rng, n)`."""
        if not self.model.LATENT:
            raise ValueError(f"{self.config.model.name} has an exact likelihood: use log_prob")
        x, k = self.checked_images(images), num_samples
        size = self.config.eval_batch_size
        parts = [
            self._bound(self.variables, x[start : start + size], jax.random.fold_in(rng, n), k)
            for n, start in enumerate(range(0, len(x), size))
        ]
        return np.concatenate([np.asarray(part, np.float64) for part in parts])

    @functools.cached_property
    def _bound(self):
        """`likelihood.bound`'s value, compiled once per batch shape and sample count."""

        def bound(variables, x, rng, num_samples):
            return likelihood.bound(self.model, variables, x, rng, num_samples)[0]

        return jax.jit(bound, static_argnums=3)

    def code(self, images) -> np.ndarray:
        """What this run's samples can be drawn given, for `images[B, H, W,
        C]`, float32 `[B, m]`: the auto-encoder's code, a latent-variable
        model's posterior mean of z, or, for a run conditioned on a trained
        network's embeddings, that network's code of the images (its
        `code`); computed in batches of the run's `eval_batch_size`."""
        x = self.checked_images(images)
        if self.embedding_network is not None:
            return self.embedding_network.code(x)
        if not (self.model.ENCODES or self.model.LATENT):
            raise ValueError(
                f"{self.config.model.name} has no code of an image (the auto-encoder, the "
                "latent-variable models and runs conditioned on embeddings have)"
            )
        size = self.config.eval_batch_size
        parts = [
            self._encode(self.variables, x[start : start + size])
            for start in range(0, len(x), size)
        ]
        return np.concatenate([np.asarray(part, np.float32) for part in parts])

    @functools.cached_property
    def _encode(self):
        """The model's `encode`, compiled once per batch shape."""
        return jax.jit(self.model.encode)

    def bits_per_dim(self, images, cond=None) -> np.ndarray:
        """The negative log-likelihood of each image in bits per subpixel, `[B]`."""
        return np.asarray(likelihood.bits_per_dim(-self.log_prob(images, cond), self.image_shape))

    def sample(
        self,
        num: int,
        rng: jax.Array,
        labels: Sequence[int] | None = None,
        temperature: float = 1.0,
        sampler: str = "fast",
        cond=None,
    ) -> np.ndarray:
        """`num` images drawn from scratch, uint8 `[num, H, W, C]`.

        `labels[num]`: one class per image, for a class-conditional run (and
        only there). `cond`: codes `[num, m]` for the auto-encoder, whose
        samples are decodings of a code; embeddings `[num, dim]` (required)
        for a run conditioned on them, e.g. `code(images)` of held-out
        images; z `[num, latent_dim]` for a latent model (default: drawn
        from the prior). The fast and naive samplers draw the
        same images for the same `rng`, and so does `experiments.sample`.
        """
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"num={num!r} must be a whole number >= 1")
        if labels is not None and cond is not None:
            raise ValueError("give labels or cond, not both")
        given = self._checked_cond(labels if cond is None else cond, num)
        if given is None and self.embedding_network is not None:
            raise ValueError(
                f"this run is conditioned on embeddings: give cond, {num} of them "
                f"[{num}, {self.config.embedding.dim}] (code(images) of images)"
            )
        canvas = dataclasses.replace(canvases.unconditional(num, self.image_shape), cond=given)
        return self._draw(canvas, rng, temperature, sampler)

    def complete(
        self,
        images,
        rows: int,
        rng: jax.Array,
        labels: Sequence[int] | None = None,
        temperature: float = 1.0,
        sampler: str = "fast",
    ) -> np.ndarray:
        """`images[B, H, W, C]` with their top `rows` rows kept and the rest
        drawn, uint8 `[B, H, W, C]`. `labels[B]` for a class-conditional run;
        the auto-encoder decodes each image's own code, and a run conditioned
        on embeddings is given each image's own. Each drawn subpixel is
        conditioned on the kept and drawn ones before it in the model's order:
        p(rest | kept) for raster-order models, but not for the multi-scale
        PixelRNN, which draws its subsampled pixels first (`sampling.sample`)."""
        x = self.checked_images(images)
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows <= x.shape[1]:
            raise ValueError(f"rows={rows!r} must be a whole number in [0, {x.shape[1]}]")
        cond = self._checked_cond(labels, len(x))
        if self.drawn_given_codes:
            cond = self.code(x)
        canvas = canvases.completions(x, rows, 1, cond)
        return self._draw(canvas, rng, temperature, sampler)

    def checked_images(self, images) -> np.ndarray:
        """`images` as int32 `[B, H, W, C]`, or a ValueError saying what is wrong."""
        if np.ndim(images) != 4 or np.shape(images)[1:] != self.image_shape:
            raise ValueError(
                f"images must be [B, {', '.join(map(str, self.image_shape))}] "
                f"({self.config.dataset.name}), got shape {list(np.shape(images))}"
            )
        return np.asarray(check_levels(images, self.num_levels))

    def _checked_cond(self, cond, batch: int) -> np.ndarray | None:
        """`cond` for `batch` images: labels `[batch]` in `[0, num_classes)` for
        a class-conditional run (required), codes `[batch, m]` or None for the
        auto-encoder, embeddings `[batch, dim]` or None for a run conditioned
        on them, z `[batch, latent_dim]` or None (the prior's) for a latent
        model, None otherwise; a ValueError for anything else."""
        if cond is None:
            if self.num_classes:
                raise ValueError(f"this run is class-conditional: give {batch} labels")
            return None
        cond = np.asarray(cond)
        if self.num_classes:
            if cond.shape != (batch,) or not np.issubdtype(cond.dtype, np.integer):
                got = f"{cond.dtype} {list(cond.shape)}"
                raise ValueError(f"labels must be {batch} ints, got {got}")
            if cond.min() < 0 or cond.max() >= self.num_classes:
                raise ValueError(f"labels must be in [0, {self.num_classes}), got {cond.tolist()}")
            return cond.astype(np.int32)
        # Embeddings, the auto-encoder's codes, a latent model's z: floats [batch, dim].
        if self.embedding_network is not None:
            name, dim = "embeddings", self.config.embedding.dim
        elif self.model.ENCODES:
            name, dim = "codes", self.config.model.code_dim
        elif self.model.LATENT:
            name, dim = "z", self.config.model.latent_dim
        else:
            raise ValueError(f"this {self.config.model.name} run is unconditional: give no labels")
        if cond.shape != (batch, dim) or not np.issubdtype(cond.dtype, np.floating):
            got = f"{cond.dtype} {list(cond.shape)}"
            raise ValueError(f"{name} must be floats [{batch}, {dim}], got {got}")
        return cond.astype(np.float32)

    def _draw(
        self, canvas: canvases.Canvas, rng: jax.Array, temperature: float, sampler: str
    ) -> np.ndarray:
        """`canvas` drawn over `mesh`, as uint8 levels."""
        samples = canvases.draw(
            canvas, self.model, self.variables, self.mesh, rng, temperature, sampler
        )
        return samples.astype(np.uint8)


def load(
    workdir: str | pathlib.Path, step: int | None = None, params: str | None = None
) -> TrainedModel:
    """The run in `workdir` (made by `experiments.train`) at its newest
    checkpoint, or at `step`; its evaluated parameters only: the EMA when it
    keeps one, else the raw ones, or `params` "raw" or "ema".

    Raises FileNotFoundError when `workdir` holds no run, ValueError when it
    has no such checkpoint.
    """
    host_memory.keep_host_memory()
    config = workdirs.load_config(workdir)
    if config is None:
        raise FileNotFoundError(f"{workdir} has no {workdirs.CONFIG_FILE}: not a training run")
    model = build_model(config.model)
    mesh = sharding.make_mesh()
    image, cond = example_inputs(config, data.get_spec(config.dataset.name))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), image, cond)["params"])
    abstract = sharding.replicated_shapes(mesh, shapes)
    manager = checkpoints.make_manager(workdir, create=False)
    try:
        use_ema = train_state.uses_ema(config, params)
        restored, restored_step = checkpoints.restore_eval_params(manager, abstract, use_ema, step)
    finally:
        manager.close()
    return TrainedModel(
        config, model, restored, restored_step, mesh, load_embedding_network(config)
    )


def load_embedding_network(config: ml_collections.ConfigDict) -> TrainedModel | None:
    """The trained network whose embeddings the run `config` is conditioned
    on (`config.embedding.workdir`), loaded; None for a run conditioned on
    none. Refused, with one ValueError, when that workdir holds no run, or
    a run with no code of an image, of other images, or of a code of
    another size than `config.embedding.dim`."""
    spec = data.get_spec(config.dataset.name)
    if conditioning_key(config, spec) != "embedding":
        return None
    workdir, dim = config.embedding.workdir, config.embedding.dim
    try:
        network = load(workdir)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"embedding.workdir={workdir}: {e}") from None
    trained_on = (network.config.dataset.name, network.image_shape, network.num_levels)
    if trained_on != (config.dataset.name, spec.image_shape, config.model.num_levels):
        raise ValueError(
            f"embedding.workdir={workdir} is a run of {trained_on[0]}, this one of "
            f"{config.dataset.name}: embed the images the run is trained on"
        )
    got = network.code(np.zeros((1, *spec.image_shape), np.int32)).shape[-1]
    if got != dim:
        raise ValueError(f"embedding.dim={dim}, but embedding.workdir={workdir} gives {got}")
    return network

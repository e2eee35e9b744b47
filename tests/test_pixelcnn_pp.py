"""PixelCNN++: the network sees exactly the earlier pixels (no blind spot),
the whole model is causal and normalised, dropout only in training, what the
conditioning does, the shape checks, and the paper-sized model's size."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pixel_models import likelihood
from pixel_models.models.pixelcnn_pp import PixelCNNPP
from pixel_models.models.registry import build_model
from tests import model_checks

NUM_CLASSES, EMBEDDING_DIM = 3, 5
TINY = dict(hidden_dim=8, num_resnets=1, num_scales=2, num_mixtures=2)


def make_cond(kind: str, batch: int) -> jnp.ndarray | None:
    """Distinct per-example conditioning: None, labels or embeddings."""
    if kind == "none":
        return None
    if kind == "label":
        return jnp.arange(1, batch + 1) % NUM_CLASSES
    return jnp.asarray(np.random.default_rng(0).normal(size=(batch, EMBEDDING_DIM)), jnp.float32)


def _setup(shape: tuple[int, int, int], num_levels: int, kind: str = "none", **overrides):
    model = PixelCNNPP(
        num_levels, num_classes=NUM_CLASSES if kind == "label" else 0, **(TINY | overrides)
    )
    x = jnp.zeros((1, *shape), jnp.int32)
    return model_checks.compiled(model), model_checks.random_variables(model, x, make_cond(kind, 1))


@pytest.fixture(scope="module")
def setup():
    """`(shape, num_levels, kind, **overrides)` -> `(jitted model, variables)`, made
    once per module."""
    return functools.cache(_setup)


def raw_output(model, variables, x, cond=None) -> jnp.ndarray:
    """The network's output `[B, H, W, P]` as `[B, H, W, 1, P]`, one "conditional"
    per pixel for `model_checks.dependency_map`."""
    return model.apply(variables, x, cond=cond)[..., None, :]


@pytest.mark.parametrize("num_scales", [1, 2, 3])
def test_network_sees_exactly_the_earlier_pixels(setup, num_scales):
    # 4x4 is small enough for the tiny network to reach every earlier pixel.
    shape = (4, 4, 3)
    model, variables = setup(shape, 4, num_scales=num_scales)
    height, width, _ = shape
    for i, j in np.ndindex(height, width):
        seen = model_checks.dependency_map(
            model, variables, shape, 4, (i, j, 0), conditionals=raw_output
        )
        earlier = np.zeros(shape, bool)
        earlier.reshape(height * width, -1)[: i * width + j] = True
        np.testing.assert_array_equal(seen, earlier, err_msg=f"output at pixel {(i, j)}")


@pytest.mark.parametrize("shape,levels", [((4, 4, 3), 4), ((4, 4, 1), 2)])
def test_causal(setup, shape, levels):
    model, variables = setup(shape, levels)
    model_checks.assert_causal(model, variables, shape, levels, num_positions=8)


# 3x3 is not a multiple of 2: one resolution there; two on 2x2 RGB (4096 images).
@pytest.mark.parametrize("shape,num_scales", [((3, 3, 1), 1), ((2, 2, 3), 2)])
def test_normalised(setup, shape, num_scales):
    model, variables = setup(shape, 2, num_scales=num_scales)
    model_checks.assert_normalised(model, variables, shape)


@pytest.mark.slow
def test_dropout_only_in_training(setup):
    shape = (4, 4, 1)
    model, variables = setup(shape, 2)
    x = model_checks.random_images((4, *shape), 2)

    def loss(seed: int) -> float:
        log_p = likelihood.log_prob(model, variables, x, train=True, rng=jax.random.key(seed))
        return float(-log_p.mean())

    assert loss(0) == loss(0) != loss(1)
    evaluation = model.apply(variables, x)
    for seed in (0, 1):
        rngs = {"dropout": jax.random.key(seed)}
        np.testing.assert_array_equal(model.apply(variables, x, train=False, rngs=rngs), evaluation)


@pytest.mark.parametrize("kind", ["label", "embedding"])
def test_conditioning_changes_every_pixel(setup, kind):
    shape = (4, 4, 3)
    model, variables = setup(shape, 4, kind)
    x = jnp.repeat(model_checks.random_images((1, *shape), 4), 4, axis=0)
    cond = make_cond(kind, 4)
    assert (cond[0] != cond[1]).any()
    out = model.apply(variables, x, cond=cond)
    assert (np.abs(out[0] - out[1]).max(axis=-1) > 1e-4).all()


@pytest.mark.parametrize("kind", ["label", "embedding"])
def test_permuting_the_batch_permutes_the_outputs(setup, kind):
    shape, perm = (4, 4, 3), np.array([2, 0, 3, 1])
    model, variables = setup(shape, 4, kind)
    x, cond = model_checks.random_images((4, *shape), 4), make_cond(kind, 4)
    out = model.apply(variables, x, cond=cond)
    permuted = model.apply(variables, x[perm], cond=cond[perm])
    np.testing.assert_allclose(permuted, out[perm], atol=1e-6)


def test_bad_conditioning(setup):
    x = jnp.zeros((2, 4, 4, 1), jnp.int32)
    with pytest.raises(ValueError, match="num_classes=0"):
        PixelCNNPP(2, **TINY).init(jax.random.key(0), x, cond=jnp.array([0, 1]))
    _, variables = setup((4, 4, 1), 2, "label")
    model = PixelCNNPP(2, num_classes=NUM_CLASSES, **TINY)
    with pytest.raises(ValueError, match="num_classes=3: cond must be the class labels"):
        model.apply(variables, x)
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\), got \[3\]"):
        model.apply(variables, x, cond=jnp.array([0, 3]))


@pytest.mark.parametrize(
    "fields,height,width,message",
    [
        (dict(num_scales=3), 6, 8, "multiples of 4, got 6x8"),
        (dict(num_scales=2), 4, 3, "multiples of 2, got 4x3"),
        (dict(num_scales=0), 4, 4, "num_scales must be at least 1"),
        (dict(num_resnets=0), 4, 4, "num_resnets must be at least 1"),
    ],
)
def test_bad_shapes(fields, height, width, message):
    model = PixelCNNPP(2, **(TINY | fields))
    with pytest.raises(ValueError, match=message):
        model.init(jax.random.key(0), jnp.zeros((1, height, width, 1), jnp.int32))


def test_paper_size():
    # The reference's layers at nr_filters F = 160, nr_resnet 5, 3 resolutions, 10
    # mixtures (P = 100 outputs), counted by hand: convs read concat_elu (2x the maps);
    # a u block is two 2x3 convs (F -> F, F -> 2F), a ul block two 2x2 ones; a nin of
    # the short-cut (F maps, 2F for ul in the down pass) is added in all but the
    # up-pass u blocks. 15 up and 17 down blocks per stream; 2 strided convs and 2
    # transposed ones per stream; the input convs read 3 + 1 channels. Weights, then
    # biases (the reference also has a weight-norm gain per bias).
    f, blocks_up, blocks_down = 160, 15, 17
    u_block, ul_block = 6 * 2 * f * 3 * f, 4 * 2 * f * 3 * f
    weights = (
        blocks_up * (u_block + ul_block + 2 * f * f)
        + blocks_down * (u_block + 2 * f * f + ul_block + 4 * f * f)
        + 2 * 2 * (6 * f * f + 4 * f * f)
        + (6 + 3 + 2) * 4 * f
        + f * 100
    )
    biases = (blocks_up * 7 + blocks_down * 8) * f + 4 * 2 * f + 3 * f + 100
    model = build_model(ml_collections.ConfigDict(dict(name="pixelcnn_pp", num_levels=256)))
    assert isinstance(model, PixelCNNPP)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.int32))
    out = jax.eval_shape(model.apply, shapes, jnp.zeros((1, 32, 32, 3), jnp.int32))
    assert out.shape == (1, 32, 32, 100) and out.dtype == jnp.float32
    assert sum(leaf.size for leaf in jax.tree.leaves(shapes)) == weights + biases == 53_618_660

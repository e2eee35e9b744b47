"""Gated PixelCNN (unconditional, class-conditional, embedding-conditional)
and the PixelCNN auto-encoder: the shared invariants, the receptive field
with no blind spot, and what the conditioning does."""

import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models.models.gated_pixelcnn import GatedPixelCNN
from pixel_models.models.pixelcnn_autoencoder import ConvEncoder, PixelCNNAutoEncoder
from tests import model_checks

KINDS = ["none", "label", "embedding", "autoencoder"]
NUM_CLASSES, EMBEDDING_DIM, CODE_DIM = 3, 5, 3
TINY = dict(hidden_dim=6, num_layers=2, output_hidden_dim=8)


def build(kind: str, num_levels: int, **overrides) -> nn.Module:
    """A tiny model of `kind`; the auto-encoder is fed a code, the others a label or embedding."""
    fields = TINY | overrides
    if kind == "autoencoder":
        return PixelCNNAutoEncoder(
            num_levels, code_dim=CODE_DIM, encoder_dim=4, encoder_layers=2, **fields
        )
    return GatedPixelCNN(num_levels, num_classes=NUM_CLASSES if kind == "label" else 0, **fields)


def make_cond(kind: str, batch: int, seed: int = 0) -> jnp.ndarray | None:
    """Distinct per-example conditioning for `kind`: None, labels, embeddings or codes."""
    if kind == "none":
        return None
    if kind == "label":
        return jnp.arange(1, batch + 1) % NUM_CLASSES
    dim = CODE_DIM if kind == "autoencoder" else EMBEDDING_DIM
    return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, dim)), jnp.float32)


def _setup(kind: str, shape: tuple[int, int, int], num_levels: int, **overrides):
    model = build(kind, num_levels, **overrides)
    x = jnp.zeros((1, *shape), jnp.int32)
    return model_checks.compiled(model), model_checks.random_variables(model, x, make_cond(kind, 1))


@pytest.fixture(scope="module")
def setup():
    """`(kind, shape, num_levels, **overrides)` -> `(jitted model, variables)`, made
    once per module."""
    return functools.cache(_setup)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape,levels", [((5, 5, 1), 2), ((4, 4, 3), 4)])
def test_causal(setup, kind, shape, levels):
    model, variables = setup(kind, shape, levels)
    model_checks.assert_causal(
        model, variables, shape, levels, num_positions=8, cond=make_cond(kind, 1)
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(3, 3, 1), (1, 2, 3)])
def test_normalised(setup, kind, shape):
    model, variables = setup(kind, shape, 2)
    model_checks.assert_normalised(model, variables, shape, cond=make_cond(kind, 1))


def _gated_field(shape, target, num_layers, input_kernel, kernel) -> np.ndarray:
    """Which pixels of a grey image reach `target`, by following the
    Gated PixelCNN's graph: the first layer's vertical stack reads the
    input_kernel//2 + 1 rows above (input_kernel wide), its horizontal stack
    as many pixels to the left; each later layer's vertical stack reads its
    input's kernel//2 rows above and its current row (kernel wide), its
    horizontal stack kernel//2 + 1 pixels of its input up to this one, and
    the vertical stack of the same layer at this pixel."""
    height, width = shape
    cells = list(itertools.product(range(height), range(width)))
    inside = lambda i, j: 0 <= i < height and 0 <= j < width  # noqa: E731

    def pixels(points):
        return {p for p in points if inside(*p)}

    r0, r = input_kernel // 2, kernel // 2
    v = {
        (i, j): pixels((i - a, j + b) for a in range(1, r0 + 2) for b in range(-r0, r0 + 1))
        for i, j in cells
    }
    h = {(i, j): pixels((i, j - b) for b in range(1, r0 + 2)) | v[i, j] for i, j in cells}
    for _ in range(num_layers - 1):
        v = {
            (i, j): set().union(
                *(
                    v[i - a, j + b]
                    for a in range(r + 1)
                    for b in range(-r, r + 1)
                    if inside(i - a, j + b)
                )
            )
            for i, j in cells
        }
        h = {
            (i, j): set().union(*(h[i, j - b] for b in range(r + 1) if inside(i, j - b))) | v[i, j]
            for i, j in cells
        }
    field = np.zeros(shape, bool)
    for p in h[target]:
        field[p] = True
    return field


def test_no_blind_spot(setup):
    layers, shape, target = 3, (8, 9), (6, 4)
    model, variables = setup("none", (*shape, 1), 2, num_layers=layers)
    seen = model_checks.dependency_map(model, variables, (*shape, 1), 2, (*target, 0))[..., 0]
    np.testing.assert_array_equal(seen, _gated_field(shape, target, layers, 3, 3))
    # Rows above: a rectangle 2 + (layers - 1) deep and 1 + (layers - 1) pixels
    # either side, the up-right pixels that the PixelCNN misses included; in the
    # row, 2 + (layers - 1) pixels to the left.
    i, j = target
    assert seen[i - 4 : i, j - 3 : j + 4].all() and seen[i, j - 4 : j].all()
    assert seen.sum() == 4 * 7 + 4


def test_sees_every_earlier_subpixel_when_deep_enough(setup):
    shape = (3, 3, 3)
    model, variables = setup("none", shape, 4)
    for target in [(2, 1, 1), (2, 2, 2), (1, 0, 0)]:
        # A path can be cut for one image by a ReLU of the output stack that is off: try three.
        seen = np.logical_or.reduce(
            [
                model_checks.dependency_map(model, variables, shape, 4, target, seed=s)
                for s in range(3)
            ]
        )
        earlier = np.zeros(shape, bool)
        earlier.reshape(-1)[: np.ravel_multi_index(target, shape)] = True
        np.testing.assert_array_equal(seen, earlier, err_msg=f"target {target}")


@pytest.mark.parametrize("kind", ["label", "embedding", "autoencoder"])
def test_conditioning_changes_every_conditional(setup, kind):
    shape = (4, 4, 3)
    model, variables = setup(kind, shape, 4)
    x = jnp.repeat(model_checks.random_images((1, *shape), 4), 2, axis=0)
    cond = make_cond(kind, 2)  # two different labels / embeddings / codes
    logits = model.apply(variables, x, cond=cond)
    assert (np.abs(logits[0] - logits[1]).max(axis=-1) > 1e-4).all()


def test_autoencoder_encodes_the_image(setup):
    shape = (4, 4, 3)
    model, variables = setup("autoencoder", shape, 4)
    x = model_checks.random_images((2, *shape), 4)
    encoder = ConvEncoder(CODE_DIM, 4, features=4, num_layers=2)
    codes = encoder.apply({"params": variables["params"]["encoder"]}, x)
    assert codes.shape == (2, CODE_DIM)
    np.testing.assert_allclose(
        model.apply(variables, x, cond=codes), model.apply(variables, x), atol=1e-6
    )


@pytest.mark.parametrize("kind", [*KINDS, "autoencoder_own_code"])
def test_permuting_the_batch_permutes_the_outputs(setup, kind):
    shape, perm = (4, 4, 3), np.array([2, 0, 3, 1])
    model, variables = setup(kind.removesuffix("_own_code"), shape, 4)
    x = model_checks.random_images((4, *shape), 4)
    cond = None if kind == "autoencoder_own_code" else make_cond(kind, 4)
    out = model.apply(variables, x, cond=cond)
    permuted = model.apply(variables, x[perm], cond=None if cond is None else cond[perm])
    np.testing.assert_allclose(permuted, out[perm], atol=1e-6)


@pytest.mark.parametrize("kind", ["label", "autoencoder"])
def test_bfloat16_gives_float32_logits_close_to_float32(setup, kind):
    shape = (4, 4, 3)
    model, variables = setup(kind, shape, 4)
    x, cond = model_checks.random_images((2, *shape), 4), make_cond(kind, 2)
    bf16 = model_checks.compiled(build(kind, 4, dtype=jnp.bfloat16)).apply(variables, x, cond=cond)
    assert bf16.dtype == jnp.float32
    np.testing.assert_allclose(bf16, model.apply(variables, x, cond=cond), atol=0.05, rtol=0.05)


def test_bad_conditioning(setup):
    x = jnp.zeros((2, 3, 3, 1), jnp.int32)
    jitted, variables = setup("label", (3, 3, 1), 2)
    model = build("label", 2)
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\), got \[3, -1\]"):
        model.apply(variables, x, cond=jnp.array([3, -1]))
    # Under jit the values are unknown: out-of-range labels give NaN, not another class.
    logits = jitted.apply(variables, x, cond=jnp.array([1, 3]))
    assert np.isfinite(logits[0]).all() and np.isnan(logits[1]).all()
    for bad in [jnp.zeros((2, 1), jnp.int32), jnp.zeros((2,)), jnp.zeros((3,), jnp.int32)]:
        with pytest.raises(ValueError, match="cond must be None, int labels"):
            model.apply(variables, x, cond=bad)
    with pytest.raises(ValueError, match="num_classes=3: cond must be the class labels"):
        model.apply(variables, x)
    with pytest.raises(ValueError, match="num_classes=0"):
        build("none", 2).init(jax.random.key(0), x, cond=jnp.array([0, 1]))
    _, variables = setup("autoencoder", (3, 3, 1), 2)
    for bad in [jnp.array([0, 1]), jnp.zeros((2, CODE_DIM + 1))]:
        with pytest.raises(ValueError, match=rf"float code \[2, {CODE_DIM}\]"):
            build("autoencoder", 2).apply(variables, x, cond=bad)


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(kernel_size=4), "kernel_size must be odd"),
        (dict(input_kernel_size=2), "input_kernel_size must be odd"),
        (dict(num_layers=0), "num_layers must be at least 1"),
    ],
)
def test_bad_hyperparameters(fields, message):
    with pytest.raises(ValueError, match=message):
        build("none", 2, **fields).init(jax.random.key(0), jnp.zeros((1, 3, 3, 1), jnp.int32))


def test_same_size_as_the_torch_peer():
    # bench/gated_pixelcnn_torch.py --hidden 32 --layers 7 --kernel 3 --out-hidden 64
    # has 145858 parameters; ours lacks only the last layer's unused residual 1x1 conv.
    model = GatedPixelCNN(2, hidden_dim=32, num_layers=7, kernel_size=3, output_hidden_dim=64)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1), jnp.int32))
    num_params = sum(leaf.size for leaf in jax.tree.leaves(shapes))
    assert num_params == 145858 - (32 * 32 + 32)

"""Split strings ("train", "train[:90%]", "train[50000:]", "a+b") on any
source, parsed by TFDS's own `ReadInstruction` so both sources agree."""

import re
import typing

_SLICED = re.compile(r"^(?P<base>[\w-]+)(\[(?P<start>\d*):(?P<stop>\d*)\])?$")


class _SplitSize(typing.NamedTuple):
    num_examples: int


def split_slices(spec: str, sizes: dict[str, int]) -> list[tuple[str, slice]]:
    """`spec` -> `[(base_split, slice), ...]` in order, given the base split sizes."""
    import tensorflow_datasets as tfds  # only here: importing TFDS costs seconds

    try:
        instructions = tfds.core.ReadInstruction.from_spec(spec).to_absolute(
            {name: _SplitSize(n) for name, n in sizes.items()}
        )
    except (ValueError, AssertionError) as e:
        raise ValueError(f"bad split {spec!r} (splits: {', '.join(sizes)}): {e}") from None
    return [(i.splitname, slice(i.from_, i.to)) for i in instructions]


def base_splits(spec: str) -> list[str]:
    """The base split names a split string refers to: "train[:10]+test" -> [train, test]."""
    return list(dict.fromkeys(part.split("[")[0].strip() for part in spec.split("+")))


def head(spec: str, n: int) -> str:
    """The first `n` examples of a one-part split: "validation" ->
    "validation[:n]", "train[45000:]" -> "train[45000:45000+n]". Raises
    ValueError for splits it cannot shorten without the split sizes
    (percentages, "a+b")."""
    match = _SLICED.match(spec.replace(" ", ""))
    if match is None:
        raise ValueError(f"cannot take the first {n} examples of split {spec!r}")
    start = int(match["start"] or 0)
    stop = start + n if not match["stop"] else min(int(match["stop"]), start + n)
    return f"{match['base']}[{match['start'] or ''}:{stop}]"

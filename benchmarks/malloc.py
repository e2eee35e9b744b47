"""`experiments.benchmark` under a chosen glibc malloc policy: what
`pixel_models.host_memory.keep_host_memory` buys on CPU (docs/benchmarks.md,
"Host memory").

    /usr/bin/time -f "%R minor page faults" python -m benchmarks.malloc POLICY \
        --config=configs/binarized_mnist.py:row_lstm --seconds=4

POLICY is one of
  auto       what every program does: keep host memory, in one arena when the
             CPU steps take whole batches (`program.one_arena_for`);
  glibc      glibc's own settings: large blocks are mapped afresh and unmapped
             on free, each step;
  keep       no mmap and a high trim threshold, with the arenas glibc picks;
  one_arena  the same, every thread served from the main arena.
The other flags are `experiments.benchmark`'s; it prints its JSON line.
"""

import sys

from experiments import benchmark, program
from pixel_models import host_memory

POLICIES = ("auto", "glibc", "keep", "one_arena")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in POLICIES:
        choices = ",".join(POLICIES)
        sys.exit(f"usage: python -m benchmarks.malloc {{{choices}}} --config=FILE:ARG ...")
    policy = sys.argv.pop(1)
    keep_host_memory = host_memory.keep_host_memory
    if policy != "auto":
        # `program.setup` looks the function up in its module when it runs.
        host_memory.keep_host_memory = lambda one_arena=False: (
            policy != "glibc" and keep_host_memory(one_arena=policy == "one_arena")
        )
    program.run(benchmark.main)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The sampling figures of docs/benchmarks.md on an accelerator (a GPU or a
# TPU), in one run: the fast samplers' equality and exact-distribution tests
# there and `experiments.benchmark` for
#   * the README command (batch 4 and 16): fast and naive img/s, kernels per step;
#     at batch 16 also with the row's loop in a CUDA graph (XLA command buffers);
#   * 256 CIFAR-10 samples at the paper sizes (Gated PixelCNN, PixelCNN++,
#     PixelCNN), drawn whole by the fast sampler: seconds, compiling
#     included and not, and its kernels per step;
#   * every binarized-MNIST family at batch 16: fast and naive, as above.
#
# benchmarks/sampling_on_accelerator.sh [OUT_DIR]   (default: sampling_figures)
#
# Each figure is one JSON line in OUT_DIR/NAME.json (its log in NAME.err),
# and the lines are printed as they come. PYTHON names the interpreter
# (default python3); LIMIT the seconds each command may take (default 300).
set -u
out=${1:-sampling_figures}
py=${PYTHON:-python3}
limit=${LIMIT:-300}
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the device

"$py" -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"

run() {  # run NAME ARGS...: one benchmark line in $out/NAME.json
  local name=$1
  shift
  local start=$SECONDS
  timeout "$limit" "$py" -m experiments.benchmark "$@" >"$out/$name.json" 2>"$out/$name.err"
  echo "$name (exit $?, $((SECONDS - start)) s): $(tail -n 1 "$out/$name.json")"
}

bmnist() {  # bmnist FAMILY [SUFFIX]: a binarized-MNIST recipe's samplers at batch 16
  run "bmnist_${1}_b16${2:-}" --config="configs/binarized_mnist.py:$1" \
    --config.batch_size=16 --seconds=0 --sample_rows=2
}

readme=(--config=configs/cifar10.py:gated_pixelcnn --config.model.hidden_dim=32
  --config.model.num_layers=7 --config.model.output_hidden_dim=64 --seconds=1 --sample_rows=2)
run readme_b4 "${readme[@]}" --config.batch_size=4
run readme_b16 "${readme[@]}" --config.batch_size=16
# The same with XLA's command buffers (CUDA graphs) taking in the row's loop:
# one graph launch for a whole row's steps instead of a launch per kernel.
graphs="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,CONDITIONAL,WHILE"
(
  export XLA_FLAGS="$graphs --xla_gpu_graph_min_graph_size=1"
  run readme_b16_graphs "${readme[@]}" --config.batch_size=16
  bmnist pixelcnn _graphs
)

paper() {  # paper FAMILY: 256 CIFAR-10 samples at the paper's size
  run "cifar10_${1}_256" --config="configs/cifar10.py:$1" \
    --config.batch_size=256 --seconds=0 --sample_rows=1 --samplers=fast --whole_batch
}
paper gated_pixelcnn
paper pixelcnn_pp

start=$SECONDS
timeout "$limit" "$py" -m pytest -o addopts="" -p no:cacheprovider -q -n 4 \
  tests/test_contract.py tests/test_fast_pixelcnn.py tests/test_fast_pixelcnn_pp.py \
  tests/test_fast_pixelrnn.py tests/test_sampling.py \
  -k "fast_sampler_draws or fast_matches or same_8_bit or flips_no_draw or pixelcnn_on_rgb \
or test_gated_pixelcnn or exact_distribution or compiles_nothing or completion_never" \
  >"$out/tests.log" 2>&1
echo "tests (exit $?, $((SECONDS - start)) s): $(tail -n 1 "$out/tests.log")"

for family in pixelcnn gated_pixelcnn pixelcnn_pp row_lstm diagonal_bilstm; do
  bmnist "$family"
done
paper pixelcnn

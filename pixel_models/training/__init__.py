"""Training on a device mesh: the train state and the pure steps, the
experiment (a config made concrete: model, optimizer, mesh, compiled steps),
the loop, checkpoints, full-split evaluation, metrics and progress."""

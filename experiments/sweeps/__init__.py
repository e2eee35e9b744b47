"""Sweeps, the library behind `experiments.sweep` and `experiments.report`:
`sweep_file` (ROOT/sweep.json, its `Sweep` and `Member`, and what finished
means), `resolve` (a config file's sweep into members), `local` (members as
child processes here, each started through `pin` on its cores) and `slurm`
(one array job)."""

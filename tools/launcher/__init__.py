"""The mesh launcher behind `make run` and the tests' `start_mesh`, one job per module:

errors      why a start failed (MeshStartError and its kinds)
ports       which ports; the probe that refuses taken ones
rundir      the run directory's lock, private files, made-once secrets
children    each child's command line and environment
process     spawn / signal / stop one child's process group
handle      MeshHandle: a running mesh (ready, restart, staged stop)
start       start_mesh
supervisor  Supervisor: restarts children that die, with backoff

`tools.run_mesh` is the command (`make run`, `llmaas-mesh`) and re-exports the public names.
"""

"""The router's request pipeline, one module per step; `run.Pipeline` runs them in order."""

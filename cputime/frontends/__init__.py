"""Front ends: command line, HTTP service, workflow helpers (Parsl, Slurm), batch extraction."""

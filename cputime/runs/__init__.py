"""Runs: finished-run logs, the runs store, ingest, training, registry, retraining and
monitoring."""

"""Runs: what finished jobs teach the model.

Finished-run logs (:mod:`.logs`, one PhoSim run folder in :mod:`.phosim_run`), host slowdowns
(:mod:`.hosts`), the runs store (:mod:`.store`) and ingest into it (:mod:`.ingest`), training
tables (:mod:`.training`), MLflow writes (:mod:`.registry`), the promotion gate
(:mod:`.promotion`), retraining (:mod:`.retrain`), drift (:mod:`.monitor`) and the model card
(:mod:`.report`).
"""

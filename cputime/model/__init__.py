"""Model: the quantile estimator, conformal calibration, the composite CPU-time model and
its persistence."""

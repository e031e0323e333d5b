"""Model: the quantile estimator, conformal calibration, the composite CPU-time model, its
persistence (one JSON document plus the booster) and its loading from any model spec."""

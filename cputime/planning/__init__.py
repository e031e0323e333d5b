"""Planning: walltime policy, predictions with walltimes and checkpoint plans, campaign totals."""

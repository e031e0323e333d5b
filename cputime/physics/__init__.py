"""Physics: sky brightness, photon counts, PhoSim's cost parts and checkpoint split;
per-sensor features."""

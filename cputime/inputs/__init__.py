"""Inputs: what PhoSim reads (instance catalogs, commands files, OpSim tables) and the focal
plane."""

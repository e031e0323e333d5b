"""Physics: what a PhoSim job costs, from what it will simulate.

Sky brightness (:mod:`.sky`), photon counts (:mod:`.photons`), PhoSim's cost parts
(:mod:`.cost`) and checkpoint split (:mod:`.checkpoints`), and the per-sensor features built from
them (:mod:`.features`, as named arrays in :mod:`.columns`).
"""

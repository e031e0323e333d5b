"""Inputs: what PhoSim reads (instance catalogs, commands files, OpSim tables) and the focal
plane.

- ``catalog``: read an instance catalog (plain or gzip bytes, ``includeobj`` files) through
  ``header`` (keywords, aliases, :class:`~cputime.inputs.header.CatalogHeader`), ``objects``
  (the vectorised object-line parser and its diagnostics) and ``lines`` (tokens, numbers,
  blank and comment lines);
- ``commands``: PhoSim commands files; ``opsim``: OpSim visit tables; ``focalplane``: sensors;
- ``validation``: the physical range of every input, one table for every reader;
  ``visit_time``: how a visit's time splits into snaps and readouts.
"""

"""``python -m cputime``: the command line, as the ``cputime`` script."""

from cputime.frontends.cli import main

raise SystemExit(main())

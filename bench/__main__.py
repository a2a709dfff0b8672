"""Entry point: ``python -m bench [--smoke]``."""

from bench.run import main

raise SystemExit(main())

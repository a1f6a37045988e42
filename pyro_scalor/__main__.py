"""Allows ``python -m pyro_scalor`` as an alias of the ``pyro-scalor`` console script."""

from pyro_scalor.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

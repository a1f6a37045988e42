"""``python -m benchmarks [options]``: the same as ``pyro-scalor bench [options]``."""

import argparse
import logging

from pyro_scalor.cli.common import DefaultsFormatter

from . import add_arguments, run

parser = argparse.ArgumentParser(
    prog="python -m benchmarks",
    description=__doc__.splitlines()[0],
    formatter_class=DefaultsFormatter,
)
add_arguments(parser)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
raise SystemExit(run(parser.parse_args()))

"""``python -m samband.cli``."""

from samband.cli import main

main()

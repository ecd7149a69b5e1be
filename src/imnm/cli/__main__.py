"""``python -m imnm.cli``."""

from imnm.cli import main

main()

"""`python -m bench` (what `make bench` runs): see bench/run.py for the options."""

from bench.run import main

main()

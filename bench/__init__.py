"""The benchmark: a fake web on loopback; the crawler, raw baselines and peers; RESULTS.md.

Run `make bench` (or `.venv/bin/python -m bench --help`). Peers are installed under
bench/.peers/, raw output goes to bench/out/; neither touches the project's virtualenv.
"""

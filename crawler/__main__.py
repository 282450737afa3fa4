"""`python -m crawler` runs the command-line interface."""

from crawler.cli import main

if __name__ == "__main__":
    main()

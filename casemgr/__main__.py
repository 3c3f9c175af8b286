"""`python -m casemgr` is the `casemgr` command (for a host where the console script is not on PATH)."""

from casemgr.cli import main

if __name__ == "__main__":
    main()

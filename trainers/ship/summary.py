"""The old path of ``python -m trainers.ship.reports.summary`` (the paper's tables and charts from run folders): it
still runs, after one line naming the new one."""
import sys

from trainers.ship.reports.summary import main

if __name__ == "__main__":
    print("note: python -m trainers.ship.summary is now python -m trainers.ship.reports.summary", file=sys.stderr)
    sys.exit(main())

"""The old path of ``python -m trainers.ship.reports.interpret`` (the nearest words of learned prompt vectors): it still
runs, after one line naming the new one."""
import sys

from trainers.ship.reports.interpret import main

if __name__ == "__main__":
    print("note: python -m trainers.ship.interpret is now python -m trainers.ship.reports.interpret", file=sys.stderr)
    sys.exit(main())

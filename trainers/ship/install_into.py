"""The old path of ``python -m trainers.ship.tools.install_into`` (the CoOp checkout installer): it still runs, after
one line naming the new one."""
import sys

from trainers.ship.tools.install_into import main

if __name__ == "__main__":
    print("note: python -m trainers.ship.install_into is now python -m trainers.ship.tools.install_into",
          file=sys.stderr)
    sys.exit(main())

"""``python -m ddlkit``. Worker start-up may re-import this module, so it only runs under
``if __name__ == "__main__":``; everything else lives in :mod:`ddlkit.cli`."""
from ddlkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

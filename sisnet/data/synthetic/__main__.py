"""``python -m sisnet.data.synthetic``: generate the synthetic set (see :func:`sisnet.data.synthetic.main`)."""
from .writer import main

if __name__ == "__main__":
    raise SystemExit(main())

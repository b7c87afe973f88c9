"""`python -m rag_jobs.index.service`: the container's entrypoint (see `run.main`)."""

import sys

from rag_jobs.index.service.run import main

if __name__ == "__main__":
    sys.exit(main())

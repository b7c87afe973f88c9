"""`python -m rag_jobs.cli`: the `rag-jobs` command."""

from rag_jobs.cli import main

main()

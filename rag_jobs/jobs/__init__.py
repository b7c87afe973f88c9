"""The five container entrypoints: thin wrappers that parse, load the step config, build adapters, run."""

"""The matrix and its specs: tasks and profiles, the registry of cells, shards, datasets, shared initial weights."""

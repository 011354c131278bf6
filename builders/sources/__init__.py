"""One module per dataset source; each registers a :class:`~ltbench.builders.spec.SourceSpec` in DATASETS."""

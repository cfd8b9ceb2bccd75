"""One module per pipeline stage, each with ``run(ctx) -> metrics``, its own cache key and artifact I/O."""

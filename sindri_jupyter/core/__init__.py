"""Provider protocol, lifecycle engine, state store, waiting and HTTP policy."""

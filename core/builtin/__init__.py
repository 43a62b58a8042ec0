"""Built-in features, registered as plugins like any other (``trylast``)."""

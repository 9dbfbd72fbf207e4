"""Activities: thin functions over the drivers. They act; workflows decide."""

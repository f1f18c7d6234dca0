"""The curriculum as YAML data files, with their schema and loader."""

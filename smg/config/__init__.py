"""Configuration: YAML loading, validation against schemas/, typed model, file watching."""

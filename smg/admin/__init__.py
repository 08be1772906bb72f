"""SMG package."""

"""Diana plugin diana-proxied (work in progress)."""

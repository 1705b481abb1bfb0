"""Diana plugin diana-csv (work in progress)."""

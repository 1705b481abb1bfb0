"""Diana plugin diana-mock (work in progress)."""

"""Diana plugin diana-orthanc (work in progress)."""

"""Entity resolution: which canonical records are the same enterprise or person (issue 5, in progress)."""

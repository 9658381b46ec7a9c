"""The four serving stages, each a small operator: Candidates in, Candidates out."""

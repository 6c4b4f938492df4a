"""Report writers: matrix.json (machines) and matrix.html (people)."""

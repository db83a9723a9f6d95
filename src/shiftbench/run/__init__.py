"""Benchmark + submission -> cells -> executor -> store: planning and running the grid."""

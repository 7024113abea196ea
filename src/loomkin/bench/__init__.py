"""Benchmarks: swarm makespan in virtual time and runtime overhead against peers."""

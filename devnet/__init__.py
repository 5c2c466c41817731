"""learnmesh devnet: many local node processes, scenarios, faults and benchmarks."""

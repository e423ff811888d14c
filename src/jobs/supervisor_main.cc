// orrery-job-supervisor DIR: supervises one job attempt (supervisor.h).
// A binary of its own, small and quick to start (the hub's own binary loads
// every backend's libraries first), started by the local executor or by a
// Slurm batch script.
#include <iostream>

#include "jobs/supervisor.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: orrery-job-supervisor ATTEMPT_DIR (started by the hub, see docs/jobs.md)\n";
    return 2;
  }
  return orrery::RunSupervisor(argv[1]);
}

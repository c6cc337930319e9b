// Package local runs clusters of real replicant server processes on this
// machine: it starts nodes on loopback addresses it picks, kills (SIGKILL),
// stops (SIGTERM), pauses (SIGSTOP) and resumes them, restarts them on the
// same data, and reads their status. `replicant check` runs its workloads
// and faults on it.
//
// Invariants:
//   - A port is handed out once per Ports value, from below the kernel's
//     ephemeral range (a port picked from that range could become the
//     source port of an outgoing connection before the server binds it).
//   - A Node's process is always waited for: Kill and Stop return only
//     once it is gone, so a restarted node never races its predecessor for
//     the data directory's lock.
//   - Nothing here decides anything about replication: it is I/O for the
//     check package's pure core.
package local

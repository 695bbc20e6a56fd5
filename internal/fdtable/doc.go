// Package fdtable grows the process's file descriptor table ahead of need.
//
// Linux grows a process's descriptor table by doubling it when a new descriptor does not fit,
// and in a process with more than one thread, as every Go program is, each growth waits for an
// RCU grace period (expand_files, synchronize_rcu) while the thread opening the descriptor
// sleeps. On the two vCPUs of docs/benchmarks.md each wait took 3 to 7 ms. The table never
// shrinks, so each growth happens once in a process's life, but a process that opens thousands
// of sockets at once pays all of them then: the load generator in the middle of a login burst,
// the broker in the reconnect storm after it starts. Grow makes the table large enough in one
// step, before that.
//
// Elsewhere than on Linux Grow does nothing.
package fdtable

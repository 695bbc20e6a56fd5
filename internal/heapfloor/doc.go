// Package heapfloor lets the heap grow at least a fixed number of bytes past what is live before
// the garbage collector runs again, where GOGC's default alone would collect sooner.
//
// Go's collector runs when the heap has grown by GOGC percent (default 100) of what the last
// cycle found live, stacks and globals included. A broker with a few thousand connections has a
// live heap of a few MiB, and in a reconnect storm each login leaves a few KiB of garbage: the
// collector ran every couple of thousand logins, each cycle scanning every parked connection's
// stack, about a twentieth of a login's CPU (docs/benchmarks.md). Raising GOGC for good would
// cost memory in proportion to the live heap: twice as much garbage at a million connections as
// at the default. A floor costs at most a fixed amount: while the live heap is small, GOGC is
// raised just enough that the next collection comes Headroom bytes later; once the live heap
// is larger than that, GOGC is the default again.
//
// The floor is set after each collection from runtime/metrics (a cleanup on a sentinel object
// runs once per cycle). GOGC is kept between 100 and the value at which the runtime's own
// minimum heap goal, 4 MiB × GOGC / 100, reaches Headroom: so a tiny heap never gets more than
// Headroom of garbage either. An operator who sets GOGC in the environment keeps it: Start does
// nothing then (docs/install.md, "Memory and garbage collection").
package heapfloor

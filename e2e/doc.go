// Package e2e holds orderflow's end-to-end tests: real provider clients
// against the simulator over loopback HTTP, the real pipeline on miniredis
// and on a real redis-server, and worker processes killed mid-flight.
package e2e

// Package tunneltest provides in-memory fakes for testing the tunnel
// engine without root: a TUN device (tundevtest's, which the engine's
// TUN driver splits and coalesces over as over the real one) and a clock
// that tests step by hand.
package tunneltest

// Package tunneltest provides in-memory fakes for testing the tunnel
// engine without root: a TUN device backed by channels and a clock that
// tests step by hand.
package tunneltest

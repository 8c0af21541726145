package tunnel

import "time"

// Clock is the engine's source of time. Tests inject a fake to step through
// the protocol timers; production uses SystemClock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, like time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable, resettable timer created by a Clock: Reset and Stop
// report whether the timer was active. It is an alias of an unnamed
// interface so fakes can implement Clock without importing this package.
type Timer = interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

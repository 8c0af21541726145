//go:build !race

package tundev

const raceEnabled = false

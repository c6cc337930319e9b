package engine

import (
	"errors"
	"strconv"
	"time"
)

// parseDurationMs accepts a Go duration ("250ms", "2s") or a bare number of
// milliseconds.
func parseDurationMs(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative duration")
		}
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("negative duration")
	}
	return d.Milliseconds(), nil
}

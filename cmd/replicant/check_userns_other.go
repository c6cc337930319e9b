//go:build !linux

package main

import (
	"errors"
	"io"
)

func inCheckUserNS() bool { return false }

func rerunInUserNS(io.Writer, io.Writer) error {
	return errors.New("check: partitions need Linux network namespaces")
}

func prepareUserNS() error { return nil }

type errRerunFailed struct{ code int }

func (e errRerunFailed) Error() string { return "check: the run failed" }

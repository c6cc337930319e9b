package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}
	dirty := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	installed := &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}
	tests := []struct {
		name                string
		ldVersion, ldCommit string
		bi                  *debug.BuildInfo
		wantVersion         string
		wantCommit          string
	}{
		{name: "ldflags win", ldVersion: "v1.2.3", ldCommit: "abc1234", bi: dirty, wantVersion: "v1.2.3", wantCommit: "abc1234"},
		{name: "vcs stamp", bi: stamped, wantVersion: "devel", wantCommit: "0123456789ab"},
		{name: "vcs stamp of a dirty tree", bi: dirty, wantVersion: "devel", wantCommit: "0123456789ab-dirty"},
		{name: "go install @version", bi: installed, wantVersion: "v0.4.0", wantCommit: "unknown"},
		{name: "nothing recorded (-buildvcs=false)", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, wantVersion: "devel", wantCommit: "unknown"},
		{name: "no build info", wantVersion: "devel", wantCommit: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readBuildInfo(tc.ldVersion, tc.ldCommit, tc.bi, "go1.99")
			if got.Version != tc.wantVersion || got.Commit != tc.wantCommit || got.GoVersion != "go1.99" {
				t.Fatalf("readBuildInfo = %+v, want version %q commit %q", got, tc.wantVersion, tc.wantCommit)
			}
		})
	}
}

// TestVersionCommands checks both spellings print the same one line.
func TestVersionCommands(t *testing.T) {
	want := currentBuild().String() + "\n"
	if !strings.HasPrefix(want, "replicant ") || !strings.Contains(want, runtime.Version()) {
		t.Fatalf("version line %q lacks the name or the Go version", want)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errOut); code != 0 {
			t.Fatalf("replicant %v: exit %d: %s", args, code, errOut.String())
		}
		if out.String() != want {
			t.Errorf("replicant %v printed %q, want %q", args, out.String(), want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, nil, &out, &errOut); code == 0 {
		t.Errorf("replicant version extra: exit 0, want a usage error")
	}
}

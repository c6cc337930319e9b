package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by `make build` (and `make static`, `make image`):
//
//	go build -ldflags "-X main.version=v0.3.0 -X main.commit=abc1234"
//
// They are the only package-level variables here because -X can set
// nothing else; everything reads them through readBuildInfo.
var (
	version string
	commit  string
)

// buildInfo says which build of replicant is running.
type buildInfo struct {
	Version   string // a release tag, or "devel" for an untagged build
	Commit    string // git revision, "-dirty" appended for uncommitted changes; "unknown" when not recorded
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// readBuildInfo combines the -ldflags values with what the Go toolchain
// recorded in the binary. The fallbacks matter because `go run` and `go
// build` without the Makefile are how most people first meet the binary:
// Go stamps vcs.revision into binaries built inside a git checkout, and a
// module version into binaries built by `go install ...@vX`.
func readBuildInfo(ldVersion, ldCommit string, bi *debug.BuildInfo, goVersion string) buildInfo {
	out := buildInfo{Version: ldVersion, Commit: ldCommit, GoVersion: goVersion, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if out.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			out.Version = bi.Main.Version
		}
		if out.Commit == "" {
			var rev string
			var dirty bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if len(rev) > 12 {
				rev = rev[:12] // git's own short form is enough to find it
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
			out.Commit = rev
		}
	}
	if out.Version == "" {
		out.Version = "devel"
	}
	if out.Commit == "" {
		out.Commit = "unknown"
	}
	return out
}

// currentBuild is this binary's build information.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return readBuildInfo(version, commit, bi, runtime.Version())
}

// String is the one line `replicant --version` prints, shaped like `go
// version` and `etcd --version` output: easy to paste into a bug report.
func (b buildInfo) String() string {
	return fmt.Sprintf("replicant %s (commit %s, %s, %s)", b.Version, b.Commit, b.GoVersion, b.Platform)
}

// newVersionCmd is `replicant version`, the same line as `--version`, for
// people who type the subcommand form (as `kubectl version`, `docker
// version`).
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, git commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), currentBuild())
			return err
		},
	}
}

// setVersion gives root a --version flag printing the same line.
func setVersion(root *cobra.Command) {
	root.Version = currentBuild().String()
	// cobra's default template prefixes "replicant version "; the line
	// already names the program.
	root.SetVersionTemplate("{{.Version}}\n")
}

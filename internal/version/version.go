// Package version reports the keymesh version: the value set at link time
// with -ldflags "-X github.com/keymesh/keymesh/internal/version.Version=v1.2.3",
// else the main module version from the build info, else "devel".
package version

import "runtime/debug"

// Version is set at link time by release builds.
var Version = ""

// String returns the version of the running binary.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

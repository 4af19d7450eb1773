package daemon

import (
	"regexp"
	"testing"

	"github.com/goroscope/goroscope/collect/discovery"
	"github.com/goroscope/goroscope/test/targettest"
)

// buildTarget builds test/targets/<pkg> and returns a copy private to
// this test binary (targettest.Private), which ownTargets matches.
func buildTarget(tb testing.TB, pkg string, o targettest.BuildOpts) string {
	tb.Helper()
	return targettest.Private(tb, targettest.Build(tb, pkg, o))
}

// ownTargets is a discovery rule watching only the targets buildTarget
// made: the tests of other packages, run at the same time, start the same
// targets, and an agent watching theirs would count them too.
func ownTargets() discovery.Match {
	return discovery.Match{Exe: "^" + regexp.QuoteMeta(targettest.PrivateDir()+"/")}
}

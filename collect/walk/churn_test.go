package walk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goroscope/goroscope/collect/process"
	"github.com/goroscope/goroscope/collect/walk"
	"github.com/goroscope/goroscope/pkg/snapshot"
	"github.com/goroscope/goroscope/test/targettest"
)

// churnSnapshots is how many snapshots each walker takes of the target;
// it goes on, up to maxChurnSnapshots, until a goroutine was read again (a
// starved target may keep its churners parked through a few walks).
const (
	churnSnapshots    = 30
	maxChurnSnapshots = 300
)

// churnFacts is what the selectchurn target says of itself at /population.
type churnFacts struct {
	Groups []struct {
		Name string   `json:"name"`
		IDs  []uint64 `json:"ids"`
	} `json:"groups"`
	Channels map[string]string `json:"channels"`
	idle     map[uint64]bool
	churn    map[uint64]bool
	idleCh   uint64
	stopCh   uint64
}

func fetchChurnFacts(t *testing.T, tgt *targettest.Target) *churnFacts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tgt.URL("/population"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /population of pid %d: %v", tgt.PID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /population of pid %d: %s %v", tgt.PID, resp.Status, err)
	}
	f := &churnFacts{idle: map[uint64]bool{}, churn: map[uint64]bool{}}
	if err := json.Unmarshal(b, f); err != nil {
		t.Fatalf("decode /population of pid %d: %v", tgt.PID, err)
	}
	for _, g := range f.Groups {
		for _, id := range g.IDs {
			switch g.Name {
			case "idle":
				f.idle[id] = true
			case "churn":
				f.churn[id] = true
			}
		}
	}
	if f.idleCh, err = parseAddr(f.Channels["idle"]); err != nil {
		t.Fatalf("idle channel: %v", err)
	}
	if f.stopCh, err = parseAddr(f.Channels["stop"]); err != nil {
		t.Fatalf("stop channel: %v", err)
	}
	if len(f.idle) == 0 || len(f.churn) == 0 {
		t.Fatalf("target has %d idle and %d churning goroutines, want both", len(f.idle), len(f.churn))
	}
	return f
}

func parseAddr(s string) (uint64, error) {
	a, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil || a == 0 {
		return 0, fmt.Errorf("bad channel address %q", s)
	}
	return a, nil
}

// churnWalkers are the walkers of TestBlockedOnUnderChurn: procmem always,
// eBPF when it loads here (its subtest skips otherwise).
func churnWalkers(t *testing.T) []func(t *testing.T) walk.Walker {
	t.Helper()
	e, err := walk.NewEBPFWalker()
	if err == nil {
		t.Cleanup(func() { e.Close() })
	}
	return []func(t *testing.T) walk.Walker{
		func(*testing.T) walk.Walker { return walk.ProcMemWalker{} },
		func(t *testing.T) walk.Walker {
			if err != nil {
				t.Skipf("eBPF walker cannot load here: %v", err)
			}
			return e
		},
	}
}

// TestBlockedOnUnderChurn: goroutines that wake and park again while a
// snapshot is taken are still reported blocked on what they wait on. The
// selectchurn target has 3,000 goroutines parked on one channel receive
// and 20 looping on select { case <-time.After(2ms): case <-stop: }, whose
// sudogs the runtime recycles all the time. In every one of many snapshots,
// with every walker and Go version:
//
//   - a churner reported waiting in select is blocked on both its timer
//     channel and stop, never on one;
//   - no channel has more receivers (or senders) than the goroutines the
//     snapshot shows waiting on it, and the idle channel has exactly its
//     3,000;
//   - the snapshotter counts the goroutines it had to read again.
func TestBlockedOnUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds targets")
	}
	walkers := churnWalkers(t)
	for _, ver := range targettest.Toolchains() {
		t.Run(displayVersion(ver), func(t *testing.T) {
			bin := targettest.Build(t, "selectchurn", targettest.BuildOpts{GoVersion: ver})
			tgt := targettest.Start(t, bin, "-idle", "3000", "-churn", "20", "-every", "2ms")
			facts := fetchChurnFacts(t, tgt)
			for i, name := range []string{"procmem", "ebpf"} {
				t.Run(name, func(t *testing.T) {
					churnSnapshotsAgree(t, tgt, walkers[i](t), facts)
				})
			}
		})
	}
}

func churnSnapshotsAgree(t *testing.T, tgt *targettest.Target, w walk.Walker, facts *churnFacts) {
	at, err := process.Attach(tgt.PID)
	if err != nil {
		t.Fatalf("attach pid %d: %v", tgt.PID, err)
	}
	defer at.Close()
	sn := walk.NewSnapshotter(at, w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		bad                 []string
		badSnap             int
		inSel, unanswered   int
		rereads, unresolved uint32
	)
	i := 0
	for ; i < churnSnapshots || (rereads == 0 && i < maxChurnSnapshots); i++ {
		s, err := sn.Snapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot %d with %s: %v", i, w.Name(), err)
		}
		st := sn.LastStats()
		rereads += st.BlockedRereads
		unresolved += st.BlockedUnresolved
		problems, sel, none := checkChurn(s, facts)
		inSel += sel
		unanswered += none
		// A churner may be left without an answer only when the
		// snapshotter says it gave up on one.
		if none > int(st.BlockedUnresolved) {
			problems = append(problems, fmt.Sprintf("%d churners in select blocked on nothing, %d counted unresolved", none, st.BlockedUnresolved))
		}
		if len(problems) > 0 {
			badSnap++
			for _, p := range problems {
				if len(bad) < 20 {
					bad = append(bad, fmt.Sprintf("snapshot %d: %s", i, p))
				}
			}
		}
	}
	t.Logf("%s: over %d snapshots, %d churners seen waiting in select (%d without an answer); goroutines read again: %d, unresolved: %d",
		w.Name(), i, inSel, unanswered, rereads, unresolved)
	if badSnap > 0 {
		t.Errorf("%s: %d of %d snapshots report wrong blocked_on facts; first:\n%s", w.Name(), badSnap, i, strings.Join(bad, "\n"))
	}
	if inSel == 0 {
		t.Errorf("%s: no churner was ever seen waiting in select", w.Name())
	}
	// 20 goroutines parking every 2ms cannot all stay put through
	// hundreds of walks: the re-reads must show in the stats.
	if rereads == 0 {
		t.Errorf("%s: LastStats().BlockedRereads is 0 in all %d snapshots of churning goroutines", w.Name(), i)
	}
}

// checkChurn lists what is wrong in one snapshot of the selectchurn target,
// and counts the churners it shows waiting in select, and those of them
// with no blocked-on.
func checkChurn(s *snapshot.Snapshot, f *churnFacts) (problems []string, inSelect, none int) {
	// waiters counts, per channel, the goroutines the snapshot shows
	// blocked on it.
	waiters := map[uint64]int{}
	chansOf := func(b *snapshot.BlockedOn) []snapshot.BlockedOn {
		if b == nil || b.Kind != snapshot.BlockedOnChan {
			return nil
		}
		return append([]snapshot.BlockedOn{*b}, b.Others...)
	}
	for _, g := range s.Goroutines {
		seen := map[uint64]bool{}
		for _, c := range chansOf(g.BlockedOn) {
			a, err := parseAddr(c.Address)
			if err != nil {
				problems = append(problems, fmt.Sprintf("goroutine %d: %v", g.ID, err))
				continue
			}
			if !seen[a] {
				seen[a] = true
				waiters[a]++
			}
		}
	}
	idle := 0
	for _, g := range s.Goroutines {
		switch {
		case f.idle[g.ID]:
			idle++
			b := g.BlockedOn
			if g.WaitReason != "chan receive" || b == nil {
				problems = append(problems, fmt.Sprintf("idle goroutine %d is %q blocked on %+v", g.ID, g.WaitReason, b))
				continue
			}
			if a, _ := parseAddr(b.Address); a != f.idleCh || b.Receivers != len(f.idle) {
				problems = append(problems, fmt.Sprintf("idle goroutine %d blocked on %s with %d receivers, want %#x with %d", g.ID, b.Address, b.Receivers, f.idleCh, len(f.idle)))
			}
		case f.churn[g.ID] && g.WaitReason == "select":
			inSelect++
			if g.BlockedOn == nil {
				none++
				continue
			}
			cs := chansOf(g.BlockedOn)
			addrs := map[uint64]bool{}
			for _, c := range cs {
				a, _ := parseAddr(c.Address)
				addrs[a] = true
			}
			if len(cs) != 2 || len(addrs) != 2 || !addrs[f.stopCh] || addrs[f.idleCh] {
				problems = append(problems, fmt.Sprintf("churner %d in select is blocked on %s, want stop (%#x) and its timer channel", g.ID, describe(cs), f.stopCh))
			}
		}
		for _, c := range chansOf(g.BlockedOn) {
			a, _ := parseAddr(c.Address)
			if c.Receivers > waiters[a] || c.Senders > waiters[a] {
				problems = append(problems, fmt.Sprintf("goroutine %d: channel %s has %d receivers and %d senders, the snapshot shows %d goroutines waiting on it", g.ID, c.Address, c.Receivers, c.Senders, waiters[a]))
			}
		}
	}
	if idle != len(f.idle) {
		problems = append(problems, fmt.Sprintf("%d of the %d idle goroutines in the snapshot", idle, len(f.idle)))
	}
	return problems, inSelect, none
}

func describe(cs []snapshot.BlockedOn) string {
	if len(cs) == 0 {
		return "nothing"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s (%d receivers)", c.Address, c.Receivers))
	}
	return strings.Join(parts, " and ")
}

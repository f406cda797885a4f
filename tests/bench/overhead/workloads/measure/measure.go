// Package measure is the handshake every overhead workload follows, so the
// runner can attach a monitor before the measured phase starts (attach
// latency is not measured) and detach it from a live process afterwards:
//
//	workload: ready pid=PID [key=value...]        then waits for a line on stdin
//	workload: (its fixed work, or until -max elapses)
//	workload: result workload=NAME ops=N elapsed_s=S cpu_s=C complete=0|1
//	          then waits for stdin to close and exits
//
// cpu_s is the process's user+system time during the phase; the kernel's
// uprobe handling runs on the probed thread, so it is counted there.
package measure

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	maxTime = flag.Duration("max", 0, "stop the work early after this long and report what was done (0: no cap)")
	scale   = flag.Float64("scale", 1, "multiply the amount of fixed work (quick runs use a fraction)")
)

// Scale applies -scale to a workload's fixed amount of work, at least 1.
func Scale(n int64) int64 {
	if s := int64(float64(n) * *scale); s > 0 {
		return s
	}
	return 1
}

// Phase is the measured part of one run.
type Phase struct {
	name    string
	stdin   *bufio.Reader
	start   time.Time
	cpu0    time.Duration
	expired atomic.Bool
}

// Begin prints the ready line (extra fields appended), waits for the go
// line and starts the clocks. Call after flag.Parse and after any set-up
// that should not be measured.
func Begin(name string, extra ...string) *Phase {
	p := &Phase{name: name, stdin: bufio.NewReader(os.Stdin)}
	fmt.Println(strings.Join(append([]string{"ready", fmt.Sprintf("pid=%d", os.Getpid())}, extra...), " "))
	p.WaitLine()
	p.cpu0 = cpuTime()
	p.start = time.Now()
	if *maxTime > 0 {
		// One timer for the whole phase; workloads poll Expired.
		time.AfterFunc(*maxTime, func() { p.expired.Store(true) })
	}
	return p
}

// Expired reports whether -max has elapsed; cheap enough for every iteration.
func (p *Phase) Expired() bool { return p.expired.Load() }

// WaitLine blocks until the runner writes a line (or closes stdin).
func (p *Phase) WaitLine() {
	_, _ = p.stdin.ReadString('\n')
}

// End prints the result line for ops units of work, then waits for stdin to
// close so that a monitor can detach while the process is still alive.
func (p *Phase) End(ops int64, complete bool) {
	elapsed := time.Since(p.start).Seconds()
	cpu := (cpuTime() - p.cpu0).Seconds()
	c := 0
	if complete {
		c = 1
	}
	fmt.Printf("result workload=%s ops=%d elapsed_s=%.6f cpu_s=%.6f complete=%d\n", p.name, ops, elapsed, cpu, c)
	for {
		if _, err := p.stdin.ReadString('\n'); err != nil {
			os.Exit(0)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

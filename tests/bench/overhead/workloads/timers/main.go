// timers: timer churn, the classic time.After in a hot select loop. A
// producer feeds a buffered channel; the consumer selects between it and a
// fresh time.After(-timeout) on every one of -n iterations. The timeout
// almost never fires: every iteration creates a timer nobody needs.
package main

import (
	"flag"
	"time"

	"goroscope.bench/overhead/measure"
)

func main() {
	n := flag.Int64("n", 6_000_000, "select iterations, one time.After each")
	timeout := flag.Duration("timeout", 100*time.Millisecond, "the time.After duration")
	flag.Parse()
	*n = measure.Scale(*n)
	p := measure.Begin("timers")

	in := make(chan int64, 64)
	quit := make(chan struct{})
	go func() {
		for i := int64(0); ; i++ {
			select {
			case in <- i:
			case <-quit:
				return
			}
		}
	}()
	var done, sum, timeouts int64
	for done < *n && !p.Expired() {
		select {
		case v := <-in:
			sum += v
		case <-time.After(*timeout):
			timeouts++
		}
		done++
	}
	close(quit)
	_ = sum
	p.End(done, done == *n)
}

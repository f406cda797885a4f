// pingpong: two goroutines pass a value back and forth over unbuffered
// channels, -n round trips. Every send and receive blocks, so each round
// trip is two parks and two wake-ups: the hottest path a park/ready probe
// can sit on.
package main

import (
	"flag"

	"goroscope.bench/overhead/measure"
)

func main() {
	n := flag.Int64("n", 6_000_000, "round trips")
	flag.Parse()
	*n = measure.Scale(*n)
	p := measure.Begin("pingpong")

	ping, pong := make(chan int64), make(chan int64)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	var done int64
	for done < *n && !p.Expired() {
		ping <- done
		<-pong
		done++
	}
	close(ping)
	p.End(done, done == *n)
}

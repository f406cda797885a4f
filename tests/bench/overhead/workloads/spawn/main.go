// spawn: a goroutine storm. Starts -n short-lived goroutines, -batch at a
// time, each doing a little arithmetic; a WaitGroup waits for each batch so
// the number alive stays bounded, as in a fan-out request handler.
package main

import (
	"flag"
	"sync"

	"goroscope.bench/overhead/measure"
)

func main() {
	n := flag.Int64("n", 5_000_000, "goroutines to start")
	batch := flag.Int("batch", 1000, "goroutines started before waiting for them")
	flag.Parse()
	*n = measure.Scale(*n)
	results := make([]int64, *batch)
	p := measure.Begin("spawn")

	var done int64
	for done < *n && !p.Expired() {
		k := int64(*batch)
		if *n-done < k {
			k = *n - done
		}
		var wg sync.WaitGroup
		wg.Add(int(k))
		for i := int64(0); i < k; i++ {
			go func(slot int64, v int64) {
				results[slot] = v * v
				wg.Done()
			}(i, done+i)
		}
		wg.Wait()
		done += k
	}
	p.End(done, done == *n)
}

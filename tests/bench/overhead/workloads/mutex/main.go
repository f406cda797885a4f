// mutex: lock contention. -g goroutines take one sync.Mutex -n times in
// total, doing a little work inside the critical section and a little
// outside, so waiters spin and then park on the runtime's semaphore.
package main

import (
	"flag"
	"sync"

	"goroscope.bench/overhead/measure"
)

// spin does w rounds of integer mixing the compiler cannot drop.
func spin(x uint64, w int) uint64 {
	for i := 0; i < w; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

func main() {
	n := flag.Int64("n", 12_000_000, "lock acquisitions in total")
	g := flag.Int("g", 8, "goroutines contending")
	inside := flag.Int("inside", 20, "work rounds while holding the lock")
	outside := flag.Int("outside", 60, "work rounds between acquisitions")
	flag.Parse()
	*n = measure.Scale(*n)
	p := measure.Begin("mutex")

	var mu sync.Mutex
	var taken int64
	var state uint64 = 1
	var wg sync.WaitGroup
	for w := 0; w < *g; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			local := seed
			for !p.Expired() {
				mu.Lock()
				if taken >= *n {
					mu.Unlock()
					return
				}
				taken++
				state = spin(state+local, *inside)
				mu.Unlock()
				local = spin(local, *outside)
			}
		}(uint64(w) + 1)
	}
	wg.Wait()
	p.End(taken, taken == *n)
}

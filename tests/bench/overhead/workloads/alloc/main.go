// alloc: an allocation storm. -n records (a small struct with pointers),
// each with a byte buffer cycling through small sizes (16 B to 256 B) and,
// one in eight, mid-sized ones (1 KiB to 16 KiB); each record is kept in a ring of -keep slots until
// overwritten, so objects live briefly and the GC has real work, like
// request-scoped data in a server.
package main

import (
	"flag"

	"goroscope.bench/overhead/measure"
)

type record struct {
	id   int64
	name string
	next *record
	buf  []byte
}

var smallSizes = []int{16, 24, 32, 48, 64, 96, 128, 256}
var midSizes = []int{1 << 10, 2 << 10, 4 << 10, 16 << 10}

func main() {
	n := flag.Int64("n", 10_000_000, "records allocated, each with its buffer")
	keep := flag.Int("keep", 4096, "recent objects kept alive")
	flag.Parse()
	*n = measure.Scale(*n)
	ring := make([]*record, *keep)
	p := measure.Begin("alloc")

	var done int64
	var prev *record
	for done < *n && !p.Expired() {
		size := smallSizes[done%int64(len(smallSizes))]
		if done%8 == 7 {
			size = midSizes[(done/8)%int64(len(midSizes))]
		}
		r := &record{id: done, next: prev, buf: make([]byte, size)}
		r.buf[0] = byte(done)
		ring[done%int64(len(ring))] = r
		// Links only within the ring's lifetime: cut the chain so nothing
		// older than the ring stays reachable.
		if prev != nil {
			prev.next = nil
		}
		prev = r
		done++
	}
	p.End(done, done == *n)
}

// httpserver: the measured target of the HTTP workload. A net/http server
// on loopback with the read/write/idle timeouts a production server sets,
// answering each request with a small JSON document. The runner drives it
// with a load generator between the go line and a stop line; ops is the
// number of requests served meanwhile.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"goroscope.bench/overhead/measure"
)

type item struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
}

type order struct {
	ID       int64  `json:"id"`
	Customer string `json:"customer"`
	Items    []item `json:"items"`
	Created  string `json:"created"`
}

func main() {
	flag.Parse()
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id := served.Add(1)
		o := order{ID: id, Customer: "c-" + r.URL.Path, Created: time.Now().UTC().Format(time.RFC3339),
			Items: []item{{"A-1", 9.5, 1}, {"B-22", 120, 2}, {"C-333", 0.99, 12}}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&o)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	go srv.Serve(ln)

	p := measure.Begin("http", fmt.Sprintf("port=%d", ln.Addr().(*net.TCPAddr).Port))
	before := served.Load()
	p.WaitLine() // the load generator has finished
	p.End(served.Load()-before, true)
}
